import uuid

from pykube_server.api.uid import new_uid


def test_new_uid_is_a_version_4_rfc4122_uuid() -> None:
    seen = set()
    for _ in range(2000):
        text = new_uid()
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
        seen.add(text[19])
    assert seen == set("89ab")


def test_new_uids_do_not_repeat_across_refills() -> None:
    uids = [new_uid() for _ in range(3000)]  # several 4 KiB refills
    assert len(set(uids)) == len(uids)


def test_a_forked_child_draws_its_own_bytes() -> None:
    import os

    new_uid()  # the buffer is filled in the parent
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(write, new_uid().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    assert child != new_uid()
