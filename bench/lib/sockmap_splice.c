// sockmap_splice: a measuring reference for bench/proxy-ceiling.sh, not part of pgwarden.
//
// A TCP forwarder whose data path is entirely in the kernel: each accepted client and its
// upstream connection go into a BPF SOCKHASH keyed by socket cookie, and an SK_SKB verdict
// program redirects every segment received on one socket to the other socket's egress
// (bpf_sk_redirect_hash). No user-space wake-up, recv or send per message; the kernel hands the
// segment to a per-CPU kworker that transmits it. It answers one question: how much of direct
// throughput can any proxy hop keep on this machine, once the user-space part is gone?
// Deliberately minimal (no timeouts, no error recovery beyond closing the pair).
//
//   sockmap_splice LISTEN_PORT UPSTREAM_PORT      (127.0.0.1 only; needs root / CAP_BPF)
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/bpf.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

enum { kMaxFd = 65536 };

static long Bpf(int cmd, union bpf_attr* attr) {
  return syscall(SYS_bpf, cmd, attr, sizeof(*attr));
}

#define INSN(c, d, s, o, i) \
  ((struct bpf_insn){.code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i)})

// Verdict: redirect to the peer stored under this socket's cookie; a socket not in the map
// (cannot happen once both are inserted) keeps its data (SK_PASS without redirect).
static int LoadVerdict(int map) {
  struct bpf_insn prog[] = {
      INSN(BPF_ALU64 | BPF_MOV | BPF_X, 6, 1, 0, 0),                   // r6 = skb
      INSN(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_get_socket_cookie),   // r0 = cookie(skb->sk)
      INSN(BPF_STX | BPF_MEM | BPF_DW, 10, 0, -8, 0),                  // key on the stack
      INSN(BPF_ALU64 | BPF_MOV | BPF_X, 1, 6, 0, 0),                   // r1 = skb
      INSN(BPF_LD | BPF_DW | BPF_IMM, 2, BPF_PSEUDO_MAP_FD, 0, map),   // r2 = map
      INSN(0, 0, 0, 0, 0),
      INSN(BPF_ALU64 | BPF_MOV | BPF_X, 3, 10, 0, 0),                  // r3 = &key
      INSN(BPF_ALU64 | BPF_ADD | BPF_K, 3, 0, 0, -8),
      INSN(BPF_ALU64 | BPF_MOV | BPF_K, 4, 0, 0, 0),                   // flags 0: egress
      INSN(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_sk_redirect_hash),
      INSN(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, SK_PASS),
      INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
  };
  static char log[65536];
  union bpf_attr a;
  memset(&a, 0, sizeof a);
  a.prog_type = BPF_PROG_TYPE_SK_SKB;
  a.expected_attach_type = BPF_SK_SKB_VERDICT;
  a.insns = (uint64_t)(uintptr_t)prog;
  a.insn_cnt = sizeof prog / sizeof prog[0];
  a.license = (uint64_t)(uintptr_t)"GPL";
  a.log_buf = (uint64_t)(uintptr_t)log;
  a.log_size = sizeof log;
  a.log_level = 1;
  int fd = (int)Bpf(BPF_PROG_LOAD, &a);
  if (fd < 0) fprintf(stderr, "sockmap_splice: BPF_PROG_LOAD: %s\n%s\n", strerror(errno), log);
  return fd;
}

static int Insert(int map, int key_fd, int value_fd) {
  uint64_t cookie = 0;
  socklen_t len = sizeof cookie;
  if (getsockopt(key_fd, SOL_SOCKET, SO_COOKIE, &cookie, &len) != 0) return -1;
  union bpf_attr a;
  memset(&a, 0, sizeof a);
  a.map_fd = (uint32_t)map;
  a.key = (uint64_t)(uintptr_t)&cookie;
  a.value = (uint64_t)(uintptr_t)&value_fd;
  a.flags = BPF_ANY;
  return (int)Bpf(BPF_MAP_UPDATE_ELEM, &a);
}

// Forwards what one socket received before its pair entered the map.
static void Flush(int from, int to) {
  char buf[65536];
  for (int i = 0; i < 64; ++i) {
    ssize_t n = recv(from, buf, sizeof buf, MSG_DONTWAIT);
    if (n <= 0) return;
    if (send(to, buf, (size_t)n, MSG_NOSIGNAL) != n) return;
  }
}

static struct sockaddr_in Loopback(int port) {
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return sa;
}

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: sockmap_splice LISTEN_PORT UPSTREAM_PORT\n");
    return 2;
  }
  union bpf_attr a;
  memset(&a, 0, sizeof a);
  a.map_type = BPF_MAP_TYPE_SOCKHASH;
  a.key_size = sizeof(uint64_t);
  a.value_size = sizeof(int);
  a.max_entries = kMaxFd;
  int map = (int)Bpf(BPF_MAP_CREATE, &a);
  if (map < 0) {
    fprintf(stderr, "sockmap_splice: BPF_MAP_CREATE: %s\n", strerror(errno));
    return 1;
  }
  int prog = LoadVerdict(map);
  if (prog < 0) return 1;
  memset(&a, 0, sizeof a);
  a.target_fd = (uint32_t)map;
  a.attach_bpf_fd = (uint32_t)prog;
  a.attach_type = BPF_SK_SKB_VERDICT;
  if (Bpf(BPF_PROG_ATTACH, &a) != 0) {
    fprintf(stderr, "sockmap_splice: BPF_PROG_ATTACH: %s\n", strerror(errno));
    return 1;
  }

  int listener = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in listen_addr = Loopback(atoi(argv[1]));
  if (bind(listener, (struct sockaddr*)&listen_addr, sizeof listen_addr) != 0 ||
      listen(listener, 1024) != 0) {
    fprintf(stderr, "sockmap_splice: listen on %s: %s\n", argv[1], strerror(errno));
    return 1;
  }
  const struct sockaddr_in upstream_addr = Loopback(atoi(argv[2]));
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = listener};
  epoll_ctl(ep, EPOLL_CTL_ADD, listener, &ev);
  static int peer[kMaxFd];
  for (;;) {
    struct epoll_event events[64];
    int n = epoll_wait(ep, events, 64, -1);
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == listener) {
        int c = accept(listener, NULL, NULL);
        if (c < 0) continue;
        int u = socket(AF_INET, SOCK_STREAM, 0);
        if (u < 0 || u >= kMaxFd || c >= kMaxFd ||
            connect(u, (const struct sockaddr*)&upstream_addr, sizeof upstream_addr) != 0) {
          close(c);
          if (u >= 0) close(u);
          continue;
        }
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        setsockopt(u, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (Insert(map, c, u) != 0 || Insert(map, u, c) != 0) {
          fprintf(stderr, "sockmap_splice: BPF_MAP_UPDATE_ELEM: %s\n", strerror(errno));
          close(c);
          close(u);
          continue;
        }
        Flush(c, u);
        Flush(u, c);
        peer[c] = u;
        peer[u] = c;
        struct epoll_event e = {.events = EPOLLIN | EPOLLRDHUP, .data.fd = c};
        epoll_ctl(ep, EPOLL_CTL_ADD, c, &e);
        e.data.fd = u;
        epoll_ctl(ep, EPOLL_CTL_ADD, u, &e);
        continue;
      }
      // Only the end of a connection (or a segment the verdict passed) reaches user space.
      char buf[65536];
      ssize_t r = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
      if (r > 0) {
        send(peer[fd], buf, (size_t)r, MSG_NOSIGNAL);
      } else if (r == 0 || errno != EAGAIN) {
        int p = peer[fd];
        epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
        epoll_ctl(ep, EPOLL_CTL_DEL, p, NULL);
        close(fd);
        close(p);
      }
    }
  }
}
