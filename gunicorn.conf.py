"""gunicorn settings for production: `gunicorn -c gunicorn.conf.py wsgi:app`.

Sized for a small instance (2 vCPUs). The budget, slowest first:
  deploy call   connect 2 s + read 30 s, never retried        ~32 s
  status read   (connect 2 s + read 5 s) x 3 tries + backoff  ~22 s (the breaker cuts outages short)
Worker `timeout` (a silent worker is killed) sits well above both; the PaaS sends SIGTERM and
waits before SIGKILL, so `graceful_timeout` lets in-flight requests finish first.
"""

import os

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
worker_class = "gthread"  # threads: requests waiting on Hummingbot do not block a process
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "25"))
keepalive = 5
max_requests = 5000  # recycle workers now and then; jitter keeps them from restarting at once
max_requests_jitter = 500
accesslog = None  # the app logs one JSON line per request itself
errorlog = "-"
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
