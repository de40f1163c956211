"""gunicorn settings, from the environment as on any platform that sets PORT."""

import os
import shutil
import tempfile

# Metrics from every worker are summed through files in this folder; it must be
# set before anything imports prometheus_client, and emptied at each start.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="codeword-metrics-")

# Platforms route to the port they set; 0.0.0.0 is what they expect.
bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"  # noqa: S104
# One worker per core; threads let a worker serve others while one waits on Redis or
# the database. The benchmark (docs/bench.md) found CPU per request the same for every
# mix it tried on two cores, so these stay the defaults.
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
worker_class = "gthread"
# Twilio gives a webhook 15 s; a stuck worker is recycled well before that.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "10"))
graceful_timeout = 10
keepalive = 5
accesslog = "-" if os.environ.get("ACCESS_LOG") else None
# gunicorn's default line carries the query string, and with it each verification
# call's signed callback token: log the path only, with the request id to correlate.
access_log_format = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(M)sms %({x-request-id}o)s'
# Several instances may run on one host (tests, benchmarks); a shared control
# socket path would make them collide, and nothing here uses it.
control_socket_disable = True
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")


def on_starting(server):
    """Migrate the database once, in the master, before any worker serves."""
    metrics_dir = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    shutil.rmtree(metrics_dir, ignore_errors=True)
    os.makedirs(metrics_dir, exist_ok=True)
    from service import create_app

    app = create_app()
    app.extensions["directory"].migrate()


def child_exit(server, worker):
    """Let a dead worker's live gauges go; its counters stay in the sums."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
