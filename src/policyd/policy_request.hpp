// policy_request.hpp: the request side of Postfix's SMTP access policy
// delegation protocol (SMTPD_POLICY_README): "name=value" lines ending with
// an empty line; many requests per connection.
//
// PolicyParser is incremental: feed() any slice of the stream, then next()
// yields each complete request in order. Only the attributes unitpolicy uses
// are kept; the others are counted and ignored. A line longer than
// max_line, a request longer than max_request, a line without '=' or with
// a NUL byte puts the parser in the failed state for good: the caller logs
// error() once and closes the connection. Both "\n" and "\r\n" line ends are
// accepted. Not thread-safe (one per connection). Logs nothing.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace unit::policyd {

struct PolicyLimits {
    std::size_t max_line = 8 * 1024;
    std::size_t max_request = 64 * 1024;
};

struct PolicyRequest {
    std::string request;         // "smtpd_access_policy" expected
    std::string protocol_state;  // RCPT, VRFY, DATA, ...
    std::string recipient;
    std::string sender;
    std::string client_address;
    std::string client_name;
    std::string queue_id;
    std::size_t attributes = 0;  // every attribute line seen, kept or not
};

class PolicyParser {
public:
    explicit PolicyParser(PolicyLimits limits = {}) noexcept : limits_(limits) {}

    void feed(std::string_view bytes);
    std::optional<PolicyRequest> next();
    bool failed() const noexcept { return !error_.empty(); }
    const std::string& error() const noexcept { return error_; }  // "policy: ..." when failed
    std::size_t buffered() const noexcept { return buffer_.size() - start_; }

private:
    bool take_line(std::string_view line);  // false: the parser failed

    PolicyLimits limits_;
    std::string buffer_;
    std::size_t start_ = 0;
    PolicyRequest current_;
    std::size_t current_size_ = 0;
    std::string error_;
};

}  // namespace unit::policyd
