// conversation.hpp: one client connection's protocol logic, without the
// socket: bytes in, reply bytes out. The server, --stdio mode and the tests
// all drive these, so what a socket client sees is tested without sockets.
//
// feed() parses every complete request in the bytes, resolves it through
// the Worker (worker.hpp) and appends the replies, in order, to `out`. It
// returns false when the stream is broken (a limit or a malformed frame): the caller
// logs error() once and closes the connection; the replies already appended
// are still to be sent. Each request is counted in Stats and timed.
// Thread safety: a Conversation and its Worker belong to one thread.
#pragma once

#include <string>
#include <string_view>

#include "common/netstring.hpp"
#include "policyd/policy_request.hpp"
#include "policyd/worker.hpp"

namespace unit::policyd {

class PolicyConversation {
public:
    explicit PolicyConversation(Worker& worker);
    bool feed(std::string_view in, std::string& out);
    const std::string& error() const noexcept { return parser_.error(); }

private:
    // The action text: static, or in the worker's settings.
    std::string_view answer(const PolicyRequest& request);

    Worker& worker_;
    PolicyParser parser_;
};

class SocketmapConversation {
public:
    explicit SocketmapConversation(Worker& worker);
    bool feed(std::string_view in, std::string& out);
    const std::string& error() const noexcept { return error_.empty() ? decoder_.error() : error_; }

private:
    std::string answer(std::string_view request);

    Worker& worker_;
    common::NetstringDecoder decoder_;
    std::string error_;
};

}  // namespace unit::policyd
