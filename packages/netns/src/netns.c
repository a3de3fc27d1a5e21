// Sockets inside another network namespace, SO_MARK and SO_ORIGINAL_DST for ztunnel's in-pod
// mode, and the TCP keepalive options Node's setKeepAlive leaves at the kernel's defaults. Node cannot setns(2), and setns(CLONE_NEWNET) changes only the calling thread, so every
// namespaced socket is made by one helper thread that enters the pod's namespace, creates the
// socket and returns to its own namespace; the socket keeps the namespace it was made in for
// life, and Node's own threads never move.
//
// The helper is long-lived rather than one thread per socket: creating and joining a thread costs
// ~36 µs here against ~20 µs for a hand-off to a waiting thread, and inbound delivery pays it on
// every connection.
//
// Failures throw an Error with `errno` (positive) and `syscall`; the TypeScript wrapper turns
// them into typed errors with the errno name and the namespace path.

#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <node_api.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

// <linux/netfilter_ipv4.h> and <linux/netfilter_ipv6/ip6_tables.h> clash with glibc's headers;
// both options are 80 and part of the kernel ABI.
#ifndef SO_ORIGINAL_DST
#define SO_ORIGINAL_DST 80
#endif
#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST 80
#endif

#define CHECK_NAPI(env, call)                                                                      \
  do {                                                                                             \
    if ((call) != napi_ok) {                                                                       \
      napi_throw_error((env), "ERR_NETNS_NAPI", "N-API call failed: " #call);                     \
      return NULL;                                                                                 \
    }                                                                                              \
  } while (0)

static napi_value throw_errno(napi_env env, int err, const char *syscall) {
  char msg[160];
  snprintf(msg, sizeof msg, "%s failed: %s", syscall, strerror(err));
  napi_value message, error, errno_value, syscall_value;
  if (napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &message) != napi_ok ||
      napi_create_error(env, NULL, message, &error) != napi_ok) {
    napi_throw_error(env, NULL, msg);
    return NULL;
  }
  napi_create_int32(env, err, &errno_value);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &syscall_value);
  napi_set_named_property(env, error, "errno", errno_value);
  napi_set_named_property(env, error, "syscall", syscall_value);
  napi_throw(env, error);
  return NULL;
}

// ---- work done on the namespaced thread --------------------------------------------------------

typedef struct {
  int ns_fd;
  int family;
  int listen;  // 1: bind + listen on addr (a datagram socket: bind only); 0: leave unconnected
  int dgram;   // 1: a UDP socket instead of TCP
  int backlog;
  unsigned mark;  // 0: leave unmarked
  struct sockaddr_storage addr;
  socklen_t addr_len;
  // results
  int fd;
  int err;
  const char *syscall;
  int done;
} ns_job;

static int job_fail(ns_job *job, int fd, const char *syscall) {
  job->err = errno;
  job->syscall = syscall;
  if (fd >= 0) close(fd);
  return -1;
}

static void ns_job_run(ns_job *job) {
  job->fd = -1;
  if (setns(job->ns_fd, CLONE_NEWNET) != 0) {
    job_fail(job, -1, "setns");
    return;
  }
  int fd = socket(job->family, (job->dgram ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    job_fail(job, -1, "socket");
    return;
  }
  if (job->mark != 0 && setsockopt(fd, SOL_SOCKET, SO_MARK, &job->mark, sizeof job->mark) != 0) {
    job_fail(job, fd, "setsockopt(SO_MARK)");
    return;
  }
  if (job->listen) {
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) {
      job_fail(job, fd, "setsockopt(SO_REUSEADDR)");
      return;
    }
    // A rollout starts the new ztunnel while the old one still listens: both bind the same
    // address in one SO_REUSEPORT group (the kernel only groups sockets of the same user), and the
    // old one's close hands its queue over (net.ipv4.tcp_migrate_req, set by the node agent).
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
      job_fail(job, fd, "setsockopt(SO_REUSEPORT)");
      return;
    }
    if (bind(fd, (struct sockaddr *)&job->addr, job->addr_len) != 0) {
      job_fail(job, fd, "bind");
      return;
    }
    if (!job->dgram && listen(fd, job->backlog) != 0) {
      job_fail(job, fd, "listen");
      return;
    }
  }
  job->fd = fd;
}

// ---- the helper thread ---------------------------------------------------------------------------

// One job at a time (the callers block until it is done, so there is never more than one per JS
// thread; the lock serialises worker_threads).
static pthread_mutex_t helper_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t helper_wake = PTHREAD_COND_INITIALIZER;
static pthread_cond_t helper_done = PTHREAD_COND_INITIALIZER;
static ns_job *helper_job;  // submitted, not yet picked up or finished
static int helper_started;

static void *helper_main(void *arg) {
  // Going home after each job: a namespace must not stay referenced (alive) by this thread after
  // its pod is gone. If this open failed the thread would only linger in the last namespace.
  int home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);

  pthread_mutex_lock(&helper_lock);
  for (;;) {
    while (helper_job == NULL || helper_job->done) pthread_cond_wait(&helper_wake, &helper_lock);
    ns_job *job = helper_job;
    pthread_mutex_unlock(&helper_lock);
    ns_job_run(job);
    if (home >= 0) setns(home, CLONE_NEWNET);
    pthread_mutex_lock(&helper_lock);
    job->done = 1;
    pthread_cond_broadcast(&helper_done);
  }
  return NULL;
}

// Runs `job` on the helper thread and waits for it. The caller's thread never changes namespace.
static napi_value run_job(napi_env env, ns_job *job) {
  job->err = 0;
  job->syscall = NULL;
  job->done = 0;
  pthread_mutex_lock(&helper_lock);
  if (!helper_started) {
    // Created with every signal blocked, which it inherits: process-directed signals belong to
    // Node's threads.
    pthread_t thread;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&thread, NULL, helper_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
      pthread_mutex_unlock(&helper_lock);
      return throw_errno(env, rc, "pthread_create");
    }
    pthread_detach(thread);
    pthread_setname_np(thread, "ambient-netns");
    helper_started = 1;
  }
  while (helper_job != NULL && !helper_job->done) pthread_cond_wait(&helper_done, &helper_lock);
  helper_job = job;
  pthread_cond_signal(&helper_wake);
  while (!job->done) pthread_cond_wait(&helper_done, &helper_lock);
  // Another caller may already have queued its job once ours was done.
  if (helper_job == job) helper_job = NULL;
  pthread_mutex_unlock(&helper_lock);

  if (job->fd < 0) return throw_errno(env, job->err, job->syscall);
  napi_value result;
  CHECK_NAPI(env, napi_create_int32(env, job->fd, &result));
  return result;
}

// ---- argument helpers ----------------------------------------------------------------------------

static int get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < want) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_COUNT", "not enough arguments");
    return 0;
  }
  return 1;
}

static int get_int(napi_env env, napi_value v, const char *name, int32_t *out) {
  if (napi_get_value_int32(env, v, out) != napi_ok) {
    char msg[80];
    snprintf(msg, sizeof msg, "%s must be a number", name);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
    return 0;
  }
  return 1;
}

static int get_uint(napi_env env, napi_value v, const char *name, uint32_t *out) {
  if (napi_get_value_uint32(env, v, out) != napi_ok) {
    char msg[80];
    snprintf(msg, sizeof msg, "%s must be a number", name);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
    return 0;
  }
  return 1;
}

static int get_bool(napi_env env, napi_value v, const char *name, bool *out) {
  if (napi_get_value_bool(env, v, out) != napi_ok) {
    char msg[80];
    snprintf(msg, sizeof msg, "%s must be a boolean", name);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
    return 0;
  }
  return 1;
}

// ---- exported functions --------------------------------------------------------------------------

// listenInNetns(nsFd, host, port, backlog, ipv6[, udp]) -> listening TCP (or bound UDP) socket fd
static napi_value listen_in_netns(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  int32_t ns_fd, port, backlog;
  bool ipv6, udp = false;
  size_t argc = 6;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (argc >= 6 && !get_bool(env, argv[5], "udp", &udp)) return NULL;
  char host[INET6_ADDRSTRLEN];
  size_t host_len;
  if (!get_args(env, info, 5, argv) || !get_int(env, argv[0], "nsFd", &ns_fd) ||
      !get_int(env, argv[2], "port", &port) || !get_int(env, argv[3], "backlog", &backlog) ||
      !get_bool(env, argv[4], "ipv6", &ipv6))
    return NULL;
  if (napi_get_value_string_utf8(env, argv[1], host, sizeof host, &host_len) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "host must be a string");
    return NULL;
  }
  if (port < 0 || port > 65535) {
    napi_throw_range_error(env, "ERR_SOCKET_BAD_PORT", "port must be 0..65535");
    return NULL;
  }

  ns_job job;
  memset(&job, 0, sizeof job);
  job.ns_fd = ns_fd;
  job.listen = 1;
  job.dgram = udp ? 1 : 0;
  job.backlog = backlog;
  if (ipv6) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&job.addr;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons((uint16_t)port);
    if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1) goto bad_host;
    job.family = AF_INET6;
    job.addr_len = sizeof *a;
  } else {
    struct sockaddr_in *a = (struct sockaddr_in *)&job.addr;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &a->sin_addr) != 1) goto bad_host;
    job.family = AF_INET;
    job.addr_len = sizeof *a;
  }
  return run_job(env, &job);

bad_host:
  napi_throw_type_error(env, "ERR_INVALID_IP_ADDRESS", "host is not an IP address of the family");
  return NULL;
}

// socketInNetns(nsFd, ipv6, mark) -> unconnected non-blocking TCP socket fd
static napi_value socket_in_netns(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int32_t ns_fd;
  bool ipv6;
  uint32_t mark;
  if (!get_args(env, info, 3, argv) || !get_int(env, argv[0], "nsFd", &ns_fd) ||
      !get_bool(env, argv[1], "ipv6", &ipv6) || !get_uint(env, argv[2], "mark", &mark))
    return NULL;
  ns_job job;
  memset(&job, 0, sizeof job);
  job.ns_fd = ns_fd;
  job.family = ipv6 ? AF_INET6 : AF_INET;
  job.mark = mark;
  return run_job(env, &job);
}

// setMark(fd, mark)
static napi_value set_mark(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t fd;
  uint32_t mark;
  if (!get_args(env, info, 2, argv) || !get_int(env, argv[0], "fd", &fd) ||
      !get_uint(env, argv[1], "mark", &mark))
    return NULL;
  if (setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof mark) != 0)
    return throw_errno(env, errno, "setsockopt(SO_MARK)");
  return NULL;
}

// setKeepalive(fd, idleSeconds, intervalSeconds, probes): SO_KEEPALIVE on, then each of
// TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT that is > 0 (0 keeps the kernel's value).
static napi_value set_keepalive(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  int32_t fd;
  uint32_t idle, interval, probes;
  if (!get_args(env, info, 4, argv) || !get_int(env, argv[0], "fd", &fd) ||
      !get_uint(env, argv[1], "idleSeconds", &idle) ||
      !get_uint(env, argv[2], "intervalSeconds", &interval) || !get_uint(env, argv[3], "probes", &probes))
    return NULL;
  struct {
    int level, name, value;
    const char *syscall;
  } options[] = {
      {SOL_SOCKET, SO_KEEPALIVE, 1, "setsockopt(SO_KEEPALIVE)"},
      {IPPROTO_TCP, TCP_KEEPIDLE, (int)idle, "setsockopt(TCP_KEEPIDLE)"},
      {IPPROTO_TCP, TCP_KEEPINTVL, (int)interval, "setsockopt(TCP_KEEPINTVL)"},
      {IPPROTO_TCP, TCP_KEEPCNT, (int)probes, "setsockopt(TCP_KEEPCNT)"},
  };
  for (size_t i = 0; i < sizeof options / sizeof options[0]; i++) {
    if (options[i].value <= 0) continue;
    if (setsockopt(fd, options[i].level, options[i].name, &options[i].value, sizeof(int)) != 0)
      return throw_errno(env, errno, options[i].syscall);
  }
  return NULL;
}

static int read_int_option(int fd, int level, int name, int32_t *out) {
  int value;
  socklen_t len = sizeof value;
  if (getsockopt(fd, level, name, &value, &len) != 0) return -1;
  *out = value;
  return 0;
}

// keepalive(fd) -> {enabled, idleSeconds, intervalSeconds, probes}: what the socket really has.
static napi_value keepalive(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t fd;
  if (!get_args(env, info, 1, argv) || !get_int(env, argv[0], "fd", &fd)) return NULL;
  int32_t enabled, idle, interval, probes;
  if (read_int_option(fd, SOL_SOCKET, SO_KEEPALIVE, &enabled) != 0)
    return throw_errno(env, errno, "getsockopt(SO_KEEPALIVE)");
  if (read_int_option(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle) != 0)
    return throw_errno(env, errno, "getsockopt(TCP_KEEPIDLE)");
  if (read_int_option(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval) != 0)
    return throw_errno(env, errno, "getsockopt(TCP_KEEPINTVL)");
  if (read_int_option(fd, IPPROTO_TCP, TCP_KEEPCNT, &probes) != 0)
    return throw_errno(env, errno, "getsockopt(TCP_KEEPCNT)");
  napi_value obj, v;
  CHECK_NAPI(env, napi_create_object(env, &obj));
  CHECK_NAPI(env, napi_get_boolean(env, enabled != 0, &v));
  CHECK_NAPI(env, napi_set_named_property(env, obj, "enabled", v));
  CHECK_NAPI(env, napi_create_int32(env, idle, &v));
  CHECK_NAPI(env, napi_set_named_property(env, obj, "idleSeconds", v));
  CHECK_NAPI(env, napi_create_int32(env, interval, &v));
  CHECK_NAPI(env, napi_set_named_property(env, obj, "intervalSeconds", v));
  CHECK_NAPI(env, napi_create_int32(env, probes, &v));
  CHECK_NAPI(env, napi_set_named_property(env, obj, "probes", v));
  return obj;
}

static napi_value make_endpoint(napi_env env, int family, const void *addr, uint16_t port) {
  char text[INET6_ADDRSTRLEN];
  if (inet_ntop(family, addr, text, sizeof text) == NULL) return throw_errno(env, errno, "inet_ntop");
  napi_value obj, host, port_value;
  CHECK_NAPI(env, napi_create_object(env, &obj));
  CHECK_NAPI(env, napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &host));
  CHECK_NAPI(env, napi_create_uint32(env, ntohs(port), &port_value));
  CHECK_NAPI(env, napi_set_named_property(env, obj, "host", host));
  CHECK_NAPI(env, napi_set_named_property(env, obj, "port", port_value));
  return obj;
}

// originalDestination(fd) -> {host, port} | undefined (no NAT entry: the connection was not redirected)
static napi_value original_destination(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t fd;
  if (!get_args(env, info, 1, argv) || !get_int(env, argv[0], "fd", &fd)) return NULL;

  struct sockaddr_storage local;
  socklen_t len = sizeof local;
  if (getsockname(fd, (struct sockaddr *)&local, &len) != 0)
    return throw_errno(env, errno, "getsockname");

  napi_value undefined;
  CHECK_NAPI(env, napi_get_undefined(env, &undefined));

  if (local.ss_family == AF_INET6) {
    struct sockaddr_in6 dst;
    len = sizeof dst;
    if (getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &dst, &len) == 0)
      return make_endpoint(env, AF_INET6, &dst.sin6_addr, dst.sin6_port);
    // A v4-mapped peer on a dual-stack listener was tracked by the IPv4 conntrack.
    if (errno != ENOENT || !IN6_IS_ADDR_V4MAPPED(&((struct sockaddr_in6 *)&local)->sin6_addr)) {
      if (errno == ENOENT) return undefined;
      return throw_errno(env, errno, "getsockopt(IP6T_SO_ORIGINAL_DST)");
    }
  }
  struct sockaddr_in dst;
  len = sizeof dst;
  if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &dst, &len) == 0)
    return make_endpoint(env, AF_INET, &dst.sin_addr, dst.sin_port);
  if (errno == ENOENT) return undefined;
  return throw_errno(env, errno, "getsockopt(SO_ORIGINAL_DST)");
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"listenInNetns", NULL, listen_in_netns, NULL, NULL, NULL, napi_enumerable, NULL},
      {"socketInNetns", NULL, socket_in_netns, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setMark", NULL, set_mark, NULL, NULL, NULL, napi_enumerable, NULL},
      {"originalDestination", NULL, original_destination, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setKeepalive", NULL, set_keepalive, NULL, NULL, NULL, napi_enumerable, NULL},
      {"keepalive", NULL, keepalive, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  CHECK_NAPI(env, napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  return exports;
}

NAPI_MODULE_INIT() { return init(env, exports); }
