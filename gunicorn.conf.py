"""gunicorn settings, from the environment as on any platform that sets PORT."""

import atexit
import os
import shutil
import signal
import tempfile

# In development a .env file may hold settings (.env.example lists them); the environment
# wins over it. Production takes its settings from the platform alone. FLASK_SKIP_DOTENV
# is the switch Flask's own CLI honours.
if os.environ.get("APP_ENV") != "production" and not os.environ.get("FLASK_SKIP_DOTENV"):
    from dotenv import find_dotenv, load_dotenv

    load_dotenv(find_dotenv(usecwd=True), override=False)

# Metrics from every worker are summed through files in this folder; it must be
# set before anything imports prometheus_client, and emptied at each start.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="codeword-metrics-")
    # Made here, so removed at exit; a folder the platform names is the platform's. Kept
    # in the environment, not a variable: a reload (HUP) reads this file again.
    os.environ["CODEWORD_OWN_METRICS_DIR"] = os.environ["PROMETHEUS_MULTIPROC_DIR"]
_MASTER_PID = os.getpid()


def _remove_own_metrics_dir() -> None:
    """Remove the metrics folder this file made, from the master only (workers fork it)."""
    own = os.environ.get("CODEWORD_OWN_METRICS_DIR")
    if own and os.getpid() == _MASTER_PID:
        shutil.rmtree(own, ignore_errors=True)


# Also when gunicorn stops before its hooks run (a port already in use, say).
atexit.register(_remove_own_metrics_dir)

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


def post_worker_init(worker):
    """Leave Ctrl-C to the master, which stops the workers itself (SIGQUIT).

    A terminal's Ctrl-C reaches the master and every worker at once. A gthread worker
    then takes SIGINT and the master's SIGQUIT within moments, and its quit handler,
    entered a second time while the first holds its thread pool's lock, waits on that
    lock forever, until the master kills it after graceful_timeout ("Worker was sent
    SIGKILL! Perhaps out of memory?").
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def child_exit(server, worker):
    """Let a dead worker's live gauges go; its counters stay in the sums."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    """Leave no metrics folder behind in the temporary folder."""
    _remove_own_metrics_dir()
