from pykube_server.api.memo import BoundedMemo


def test_bounded_memo_drops_the_oldest_entry_when_full() -> None:
    memo: BoundedMemo[str, int] = BoundedMemo(2)
    memo.put("a", 1)
    memo.put("b", 2)
    memo.put("a", 10)  # replacing a key keeps every entry
    assert len(memo) == 2 and memo.get("a") == 10
    memo.put("c", 3)
    assert "a" not in memo and memo.get("b") == 2 and memo.get("c") == 3
    memo.clear()
    assert len(memo) == 0 and memo.get("b") is None
