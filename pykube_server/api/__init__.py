"""The wire vocabulary shared by the server and every client: pure, no I/O."""
