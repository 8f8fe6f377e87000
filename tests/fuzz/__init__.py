"""Bad input at the edges: property-based fuzzing of every endpoint through the gateway.

Whatever a client sends, the answer comes within a bounded time, is never a 5xx (503 neither:
the dependencies are up), is always the JSON envelope `{message, data, error}` with `error`
true exactly for statuses >= 400, and a refused upload leaves no file and no row behind.
`strategies` makes the input, `gateway` sends it and checks the answer, `rawhttp` speaks HTTP
over a bare socket for what a client library will not send, and `cases` keeps the known cases.
"""
