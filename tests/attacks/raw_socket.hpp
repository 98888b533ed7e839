// raw_socket.hpp: one Unix stream connection driven byte by byte, the way a
// hostile or broken client would, for the attacks of tests/attacks/.
//
// Contract: connect() never throws; a RawSocket that could not connect is
// !ok() and every operation on it fails. send_all() never raises SIGPIPE
// (MSG_NOSIGNAL). What the peer did is reported, never logged: whether it
// closed the connection (end of stream or reset), and within which time.
// Not thread-safe (one per attacking thread). Move-only; closes on
// destruction.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

namespace unit::attacks {

class RawSocket {
public:
    RawSocket() = default;
    // Blocking connect to a Unix socket; !ok() when it failed.
    static RawSocket connect(const std::string& path);
    RawSocket(RawSocket&& other) noexcept;
    RawSocket& operator=(RawSocket&& other) noexcept;
    RawSocket(const RawSocket&) = delete;
    RawSocket& operator=(const RawSocket&) = delete;
    ~RawSocket();

    bool ok() const noexcept { return fd_ >= 0; }
    int fd() const noexcept { return fd_; }

    // Writes all of `bytes` (blocking); false as soon as the peer is gone
    // (EPIPE, ECONNRESET). `sent` adds up what the kernel took.
    bool send_all(std::string_view bytes, std::size_t& sent);
    bool send_all(std::string_view bytes);
    // One non-blocking write of a few bytes; false when the peer is gone.
    bool send_nowait(std::string_view bytes);

    // Reads (and keeps in received()) until the peer closes the connection:
    // true when it did within `timeout`.
    bool wait_closed(std::chrono::milliseconds timeout);
    // Reads until `marker` is in received(), the peer closes, or `timeout`.
    bool read_until(std::string_view marker, std::chrono::milliseconds timeout);
    // Whether bytes or the end of the stream wait to be read (no reading).
    bool readable(std::chrono::milliseconds timeout) const;
    // Without reading: the peer has closed, or reset, the connection.
    bool peer_closed() const;
    const std::string& received() const noexcept { return received_; }

    // Bounds each blocking send (a server that stops reading must not hang
    // the attacker): send_all() then fails with the peer still there.
    void set_send_timeout(std::chrono::milliseconds timeout);
    void shutdown_write();
    // Closes with the peer's answers still unread: on a Unix socket the
    // peer's next read or write then fails with ECONNRESET, as after a RST.
    void abort();
    void close();

private:
    explicit RawSocket(int fd) noexcept : fd_(fd) {}
    // One read into received_: >0 bytes, 0 end of stream or reset, -1 nothing yet.
    int read_once(std::chrono::milliseconds timeout);

    int fd_ = -1;
    std::string received_;
};

// Raises this process's soft limit on open files to the hard one (the
// attacks hold thousands of connections); returns the new soft limit.
std::size_t raise_open_file_limit();

}  // namespace unit::attacks
