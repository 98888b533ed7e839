// server.hpp: the unitpolicy daemon's sockets (Boost.Asio).
//
// Server binds every listener of the settings (a unix socket is created
// for its owner only, then gets socket_group and socket_mode, with a
// warning when that leaves it to root alone; a stale socket file is
// replaced; an inet listener not on loopback is warned about), and the
// control socket (mode 0600). run() serves until stop(): one thread per worker, each
// with its own io_context and Worker (its own SQLite connection), so a
// connection's requests are answered on one thread without locks; the main
// io_context accepts and hands each connection to the next worker. SIGHUP
// re-reads the configuration (given as a callback), SIGTERM and SIGINT stop
// accepting, let every connection send what it has answered, and make run()
// return. Logs connection problems once each, in Postfix's style. The
// held-mail watcher (held_mail.hpp) runs beside the workers, from run()
// until it returns.
//
// Client limits (unitpolicy.conf(5)): a request must arrive whole, and its
// answers be read, within request_timeout, and a connection idle for
// idle_timeout is closed. Every client is accepted at once: past
// max_connections (or what the open file limit allows, whose soft value is
// raised to the hard one), or past max_connections_per_peer from one inet
// client (among its own connections; the new one itself while that client
// holds one it never used), another connection is closed to make room,
// since Postfix's clients reconnect when they find theirs closed:
// first one that never had a request answered (Postfix's clients ask as
// they connect), else the one idle the longest, and one in the middle of a
// request or with answers unread only when all are. One connection holds at most
// max_request (+ one read) of request bytes and twice 16 KiB (+ the answers
// to 128 bytes of requests) of answers its client has not read, with 32 KiB
// more in the kernel's socket buffer; an idle one holds no buffer. A
// connection's turn on its worker is about 50 µs of parsing and answering:
// a client pipelining thousands of requests takes turns with the others
// instead of delaying them.
#pragma once

#include <functional>
#include <memory>

#include "policyd/settings.hpp"
#include "policyd/stats.hpp"

namespace unit::policyd {

class Server {
public:
    using Reload = std::function<std::shared_ptr<const Settings>()>;

    // Binds the sockets (as root, before dropping privileges). Throws
    // std::runtime_error with a one-line reason when a socket cannot be made.
    Server(std::shared_ptr<const Settings> settings, Reload reload);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Serves until SIGTERM/SIGINT; returns normally then.
    void run();
    Stats& stats() noexcept;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace unit::policyd
