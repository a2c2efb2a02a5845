// The native floor for bench/: a minimal single-threaded epoll HTTP/1.1 server answering every
// request head with the plaintext workload's response (the header fields and body bench/app.ts
// sends for /plaintext), whatever the path. No parsing beyond finding "\r\n\r\n": it is the
// lower bound on per-request cost, not a real server, so it runs only the plaintext workloads.
// Build: zig cc -O2 -o floor floor.c    Run: ./floor PORT  (prints "listening PORT")
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define EVENTS_MAX 512
#define BUFFER_BYTES 16384

static char date_line[64];
static time_t date_second;

static void refresh_date(void) {
  time_t now = time(NULL);
  if (now == date_second) return;
  date_second = now;
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(date_line, sizeof date_line, "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
}

int main(int argc, char **argv) {
  int port = argc > 1 ? atoi(argv[1]) : 0;
  int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (bind(listener, (struct sockaddr *)&address, sizeof address) < 0 || listen(listener, 4096) < 0) {
    perror("bind/listen");
    return 1;
  }
  socklen_t length = sizeof address;
  getsockname(listener, (struct sockaddr *)&address, &length);
  printf("listening %d\n", ntohs(address.sin_port));
  fflush(stdout);
  int epoll = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event event = {.events = EPOLLIN, .data.fd = listener};
  epoll_ctl(epoll, EPOLL_CTL_ADD, listener, &event);
  struct epoll_event events[EVENTS_MAX];
  static char in[BUFFER_BYTES], out[BUFFER_BYTES * 4];
  for (;;) {
    int ready = epoll_wait(epoll, events, EVENTS_MAX, -1);
    for (int i = 0; i < ready; i++) {
      int fd = events[i].data.fd;
      if (fd == listener) {
        for (;;) {
          int client = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (client < 0) break;
          struct epoll_event client_event = {.events = EPOLLIN | EPOLLRDHUP, .data.fd = client};
          epoll_ctl(epoll, EPOLL_CTL_ADD, client, &client_event);
        }
        continue;
      }
      ssize_t n = read(fd, in, sizeof in);
      if (n <= 0) {
        close(fd);
        continue;
      }
      refresh_date();
      size_t used = 0;
      for (ssize_t at = 0; at + 3 < n; at++) {
        if (in[at] == '\r' && in[at + 1] == '\n' && in[at + 2] == '\r' && in[at + 3] == '\n') {
          used += (size_t)snprintf(out + used, sizeof out - used,
            "HTTP/1.1 200 OK\r\nserver: bench\r\ncontent-type: text/plain\r\n%scontent-length: 13\r\n\r\nHello, World!", date_line);
          at += 3;
        }
      }
      if (used > 0 && write(fd, out, used) < 0) close(fd);
    }
  }
}
