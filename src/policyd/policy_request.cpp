// policy_request.cpp: the incremental parser of policy delegation requests.
#include "policyd/policy_request.hpp"

#include <fmt/format.h>

namespace unit::policyd {

namespace {

// Where each attribute we use is kept; nullptr for the others.
std::string* slot(PolicyRequest& r, std::string_view name) noexcept {
    if (name == "request") return &r.request;
    if (name == "protocol_state") return &r.protocol_state;
    if (name == "recipient") return &r.recipient;
    if (name == "sender") return &r.sender;
    if (name == "client_address") return &r.client_address;
    if (name == "client_name") return &r.client_name;
    if (name == "queue_id") return &r.queue_id;
    return nullptr;
}

}  // namespace

void PolicyParser::feed(std::string_view bytes) {
    if (failed()) return;  // the connection is lost; do not grow the buffer
    buffer_.append(bytes);
}

bool PolicyParser::take_line(std::string_view line) {
    if (line.find('\0') != std::string_view::npos) {
        error_ = "policy: NUL byte in attribute line";
        return false;
    }
    const auto eq = line.find('=');
    if (eq == std::string_view::npos) {
        error_ = "policy: attribute line without '='";
        return false;
    }
    ++current_.attributes;
    if (std::string* value = slot(current_, line.substr(0, eq))) value->assign(line.substr(eq + 1));
    return true;
}

std::optional<PolicyRequest> PolicyParser::next() {
    std::optional<PolicyRequest> done;
    while (!failed() && !done) {
        const std::size_t end = buffer_.find('\n', start_);
        if (end == std::string::npos) {
            // An incomplete line: fail as soon as it cannot fit in max_line
            // (a final '\r' may still be the start of its "\r\n"), so the
            // buffer stays bounded. The request limit is checked on whole
            // lines only, so every split of the stream gives the same error.
            const std::size_t partial = buffer_.size() - start_;
            if (partial > limits_.max_line + 1 || (partial == limits_.max_line + 1 && buffer_.back() != '\r'))
                error_ = fmt::format("policy: line longer than {} bytes", limits_.max_line);
            break;
        }
        std::string_view line(buffer_.data() + start_, end - start_);
        const std::size_t line_bytes = line.size() + 1;  // with its line end
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        start_ = end + 1;

        if (line.size() > limits_.max_line) {
            error_ = fmt::format("policy: line longer than {} bytes", limits_.max_line);
            break;
        }
        if (line.empty() && current_.attributes == 0) {  // a stray empty line, not a request
            current_size_ = 0;
            continue;
        }
        current_size_ += line_bytes;
        if (current_size_ > limits_.max_request) {
            error_ = fmt::format("policy: request longer than {} bytes", limits_.max_request);
            break;
        }
        if (line.empty()) {
            done = std::move(current_);
            current_ = PolicyRequest{};
            current_size_ = 0;
        } else if (!take_line(line)) {
            break;
        }
    }

    // Compact cheaply: drop the consumed front only once it is more than
    // half of the buffer (amortised O(1) per byte).
    if (start_ == buffer_.size()) {
        buffer_.clear();
        start_ = 0;
    } else if (start_ > buffer_.size() / 2) {
        buffer_.erase(0, start_);
        start_ = 0;
    }
    if (failed()) return std::nullopt;
    return done;
}

}  // namespace unit::policyd
