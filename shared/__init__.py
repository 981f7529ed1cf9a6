"""Code shared by the api, the workers and the scheduler. It imports nothing of theirs."""
