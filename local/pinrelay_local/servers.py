"""What the local servers (moto server, the stand-ins, the fault proxy, the HTTP gateway) share."""

# How often a ``serve_forever`` loop looks for ``shutdown()``: stopping a server waits up to one
# interval. socketserver's default, 0.5 s, was added to the teardown of every test that stops a
# server (1.5 s for the platform tests' three stand-ins, 75 s over that one file); 50 ms costs an
# idle server 20 wake-ups a second.
SHUTDOWN_POLL_S = 0.05
