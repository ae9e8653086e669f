"""The simulator's contact-center model, no I/O: roster, ids, agents, devices, calls and media."""
