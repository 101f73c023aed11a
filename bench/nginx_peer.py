"""The nginx configuration the benchmarks' peer runs with, one instance per folder: no access
log, every temporary path and the pid file inside the folder, so several instances (one per node
namespace) never share a file."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "system"))

from harness import dedent, write_file  # noqa: E402


def write_nginx_conf(path, folder, http_body):
    """Writes nginx.conf at `path` for an instance living in `folder` (which needs a `temp`
    subfolder); `http_body` goes inside `http {}` (server blocks or an include)."""
    inner = "\n".join("    " + line if line else line for line in dedent(http_body).splitlines())
    write_file(path, dedent("""\
        user nobody nogroup;
        worker_processes 1;
        pid {f}/nginx.pid;
        error_log {f}/nginx-error.log warn;
        events {{ worker_connections 1024; }}
        http {{
            access_log off;
            client_body_temp_path {f}/temp/client_body;
            proxy_temp_path {f}/temp/proxy;
            fastcgi_temp_path {f}/temp/fastcgi;
            uwsgi_temp_path {f}/temp/uwsgi;
            scgi_temp_path {f}/temp/scgi;
        """).format(f=folder) + inner + "\n}\n")
