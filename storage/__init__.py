"""Tables, sessions, repositories and search."""
