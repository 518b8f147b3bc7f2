"""The test kit: what every test builds its world from, in one place.

- settings.py      the one settings builder: the required variables plus what a test changes
- world.py         the observed world for the core's tables: instances, records, settled worlds
- cloud.py         the in-memory AWS (FakeCloud), health checks included, and its call log
- runs.py          running the reconcile job on FakeCloud: back to back, or on the schedule
- slow_aws.py      a slow AWS on the fake clock, and the Lambda context's time
- lambda_app.py    app.py's handlers through chalice's test client on FakeCloud
- scripted_aws.py  a scripted AWS endpoint on 127.0.0.1, for botocore's retries

The stand-in web server is standin/web.py, shared with the demo and the benchmarks.
"""
