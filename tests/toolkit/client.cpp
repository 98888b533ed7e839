// Client and classify(): one connection speaking the policy delegation or
// the socketmap protocol as Postfix's clients do, and what a reply means.
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <optional>

#include "load.hpp"
#include "socket.hpp"

namespace unit::load {

namespace {

using Clock = std::chrono::steady_clock;

// Postfix's own limit on a socketmap reply; a longer one is a broken peer.
constexpr std::size_t max_reply = 100'000;

bool starts_with(std::string_view text, std::string_view prefix) noexcept {
    return text.size() >= prefix.size() && text.substr(0, prefix.size()) == prefix;
}

// Case-insensitive, as Postfix compares policy actions.
bool starts_with_word(std::string_view text, std::string_view word) noexcept {
    if (text.size() < word.size()) return false;
    for (std::size_t i = 0; i < word.size(); ++i)
        if (std::toupper(static_cast<unsigned char>(text[i])) != word[i]) return false;
    return text.size() == word.size() || text[word.size()] == ' ';
}

std::string policy_frame(const Request& request) {
    std::string frame;
    frame.reserve(160 + request.key.size());
    frame += "request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\n";
    frame += "client_address=192.0.2.1\nclient_name=load.example\nsender=load@example.org\n";
    frame += "recipient=";
    frame += request.key;
    frame += "\n\n";
    return frame;
}

std::string socketmap_frame(const Request& request) {
    std::string payload = request.map + ' ' + request.key;
    return std::to_string(payload.size()) + ':' + payload + ',';
}

// A complete policy reply at the start of `buffer`: its action value, and
// how many bytes it took. nullopt: more bytes needed. Sets `broken` when
// the reply has no action attribute.
std::optional<std::string> take_policy_reply(std::string& buffer, std::string& broken) {
    auto end = buffer.find("\n\n");
    if (end == std::string::npos) {
        if (buffer.size() > max_reply) broken = "policy reply too long";
        return std::nullopt;
    }
    std::string_view reply(buffer.data(), end + 1);
    std::optional<std::string> action;
    while (!reply.empty()) {
        auto nl = reply.find('\n');
        std::string_view line = reply.substr(0, nl);
        if (starts_with(line, "action=")) action = std::string(line.substr(7));
        reply.remove_prefix(nl + 1);
    }
    buffer.erase(0, end + 2);
    if (!action) broken = "policy reply without an action";
    return action;
}

// A complete netstring at the start of `buffer`. nullopt: more bytes
// needed, or `broken` set when the framing is wrong.
std::optional<std::string> take_netstring(std::string& buffer, std::string& broken) {
    auto colon = buffer.find(':');
    if (colon == std::string::npos) {
        if (buffer.size() > 6) broken = "netstring: bad length";
        return std::nullopt;
    }
    std::size_t length = 0;
    auto [end, ec] = std::from_chars(buffer.data(), buffer.data() + colon, length);
    if (ec != std::errc() || end != buffer.data() + colon || colon == 0 || length > max_reply ||
        (colon > 1 && buffer[0] == '0')) {
        broken = "netstring: bad length";
        return std::nullopt;
    }
    if (buffer.size() < colon + 1 + length + 1) return std::nullopt;
    if (buffer[colon + 1 + length] != ',') {
        broken = "netstring: missing ','";
        return std::nullopt;
    }
    std::string payload = buffer.substr(colon + 1, length);
    buffer.erase(0, colon + 1 + length + 1);
    return payload;
}

int remaining_ms(Clock::time_point deadline) noexcept {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    return left <= 0 ? 0 : static_cast<int>(left) + 1;
}

}  // namespace

// ------------------------------------------------------------ classify

Verdict classify(Protocol protocol, const Reply& reply) {
    if (!reply.ok) return Verdict::NoAnswer;
    std::string_view text = reply.text;
    if (protocol == Protocol::Socketmap) {
        if (starts_with(text, "OK")) return Verdict::Accept;
        if (starts_with(text, "NOTFOUND")) return Verdict::Reject;
        if (starts_with(text, "PERM")) return Verdict::Reject;  // a permanent failure of the lookup
        return Verdict::Tempfail;  // TEMP, and anything Postfix would count as a lookup error
    }
    if (!text.empty() && text[0] == '5') return Verdict::Reject;
    if (!text.empty() && text[0] == '4') return Verdict::Tempfail;
    if (!text.empty() && text[0] == '2') return Verdict::Accept;
    if (starts_with_word(text, "REJECT")) return Verdict::Reject;
    for (std::string_view accept :
         {"DUNNO", "OK", "PREPEND", "FILTER", "HOLD", "DISCARD", "REDIRECT", "BCC", "INFO", "WARN"})
        if (starts_with_word(text, accept)) return Verdict::Accept;
    // DEFER, DEFER_IF_PERMIT, DEFER_IF_REJECT; an unknown action is a server
    // configuration error to Postfix, which answers 451.
    return Verdict::Tempfail;
}

const char* verdict_name(Verdict verdict) {
    switch (verdict) {
    case Verdict::Accept: return "accept";
    case Verdict::Reject: return "reject";
    case Verdict::Tempfail: return "tempfail";
    case Verdict::NoAnswer: return "no-answer";
    }
    return "?";
}

// ------------------------------------------------------------ Client

Client::Client(std::string path, std::chrono::milliseconds timeout) : path_(std::move(path)), timeout_(timeout) {}

Client::~Client() { close(); }

void Client::close() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    buffer_.clear();
}

// Blocking connect bounded by the send timeout (see connect_unix()).
bool Client::ensure_connected(std::string& why) {
    if (fd_ >= 0) return true;
    fd_ = toolkit::connect_unix(path_, why, timeout_);
    return fd_ >= 0;
}

Reply Client::ask(const Request& request) {
    auto deadline = Clock::now() + timeout_;
    auto fail = [this](std::string why) {
        close();
        return Reply{false, std::move(why)};
    };
    std::string why;
    if (!ensure_connected(why)) return fail(std::move(why));

    std::string frame = request.protocol == Protocol::Policy ? policy_frame(request) : socketmap_frame(request);
    for (std::size_t sent = 0; sent < frame.size();) {
        ssize_t n = send(fd_, frame.data() + sent, frame.size() - sent, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return fail(std::string("send: ") + (n < 0 ? std::strerror(errno) : "nothing written"));
        sent += static_cast<std::size_t>(n);
    }

    char chunk[4096];
    for (;;) {
        std::string broken;
        auto answer = request.protocol == Protocol::Policy ? take_policy_reply(buffer_, broken)
                                                           : take_netstring(buffer_, broken);
        if (!broken.empty()) return fail(std::move(broken));
        if (answer) return Reply{true, std::move(*answer)};
        pollfd p{fd_, POLLIN, 0};
        int ready = poll(&p, 1, remaining_ms(deadline));
        if (ready < 0 && errno == EINTR) continue;
        if (ready < 0) return fail(std::string("poll: ") + std::strerror(errno));
        if (ready == 0) return fail("timeout");
        ssize_t n = recv(fd_, chunk, sizeof chunk, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return fail(std::string("recv: ") + std::strerror(errno));
        if (n == 0) return fail("connection closed by the server");
        buffer_.append(chunk, static_cast<std::size_t>(n));
    }
}

}  // namespace unit::load
