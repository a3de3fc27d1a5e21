// The peer proxies' configurations: nginx and haproxy doing what the VirtualService says
// (end-user: jason → v2, everyone else 90/10 v1/v2), each with one worker/thread like our
// single-threaded Node proxies, no access log (the mesh runs at log level error, so it writes none
// either), pooled keep-alive connections to the servers, and no per-connection request limit.

import { join } from "node:path";
import { HAPROXY, NGINX, V1, V2 } from "./config.mjs";

/** `prefix`: a folder of ours for nginx's pid and temp files (nothing under /var). */
export function nginxConfig(prefix) {
  const tmp = join(prefix, "tmp");
  return `# Written by bench/waypoint/run.mjs.
daemon off;
master_process on;
worker_processes 1;
pid ${join(prefix, "nginx.pid")};
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${tmp}/body;
  proxy_temp_path ${tmp}/proxy;
  fastcgi_temp_path ${tmp}/fastcgi;
  uwsgi_temp_path ${tmp}/uwsgi;
  scgi_temp_path ${tmp}/scgi;
  # nginx closes a client connection after 1000 requests by default; the other paths never do.
  keepalive_requests 1000000;
  keepalive_timeout 120s;

  # The weighted split, rolled per request (request_id is random), then the header match over it.
  split_clients "\${request_id}" $by_weight {
    90% v1;
    *   v2;
  }
  map $http_end_user $pool {
    jason   v2;
    default $by_weight;
  }
  upstream v1 {
    server ${V1.host}:${V1.port};
    keepalive 64;
    keepalive_requests 1000000;
  }
  upstream v2 {
    server ${V2.host}:${V2.port};
    keepalive 64;
    keepalive_requests 1000000;
  }
  server {
    listen ${NGINX.host}:${NGINX.port};
    location / {
      proxy_pass http://$pool;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
    }
  }
}
`;
}

export function haproxyConfig() {
  return `# Written by bench/waypoint/run.mjs.
global
  nbthread 1
  maxconn 4096

defaults
  mode http
  option http-keep-alive
  # Share idle server connections across client connections, as nginx's upstream keepalive does.
  http-reuse always
  timeout connect 5s
  timeout client 120s
  timeout server 120s
  timeout http-keep-alive 120s

frontend reviews
  bind ${HAPROXY.host}:${HAPROXY.port}
  use_backend v2 if { req.hdr(end-user) -m str jason }
  use_backend v2 if { rand(100) lt 10 }
  default_backend v1

backend v1
  server v1 ${V1.host}:${V1.port}

backend v2
  server v2 ${V2.host}:${V2.port}
`;
}
