// milter_client.cpp: see milter_client.hpp. Packet format: a 4-byte
// big-endian length, then a command byte and its data (libmilter's mfdef.h).
#include "milter_client.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string_view>

#include "socket.hpp"

namespace unit::toolkit {
namespace {

// Protocol steps a filter may decline (no such packet) or not answer.
constexpr std::uint32_t no_connect = 0x1, no_helo = 0x2, no_mail = 0x4, no_rcpt = 0x8, no_body = 0x10,
                        no_headers = 0x20, no_eoh = 0x40, nr_header = 0x80, no_data = 0x200, nr_connect = 0x1000,
                        nr_helo = 0x2000, nr_mail = 0x4000, nr_rcpt = 0x8000, nr_data = 0x10000, nr_eoh = 0x40000,
                        nr_body = 0x80000;
constexpr std::uint32_t offered_steps = 0x1fffff;
constexpr std::uint32_t offered_actions = 0x1ff;
constexpr std::uint32_t protocol_version = 6;

struct Failure : std::runtime_error {
    using std::runtime_error::runtime_error;
};

class Connection {
public:
    Connection(const std::string& path, std::chrono::milliseconds timeout) {
        std::string why;
        fd_ = connect_unix(path, why, timeout, timeout);
        if (fd_ < 0) throw Failure(why);
    }
    ~Connection() { ::close(fd_); }
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    void send(char command, std::string_view data) {
        std::uint32_t length = static_cast<std::uint32_t>(data.size() + 1);
        out_.clear();
        for (int shift = 24; shift >= 0; shift -= 8) out_ += static_cast<char>((length >> shift) & 0xff);
        out_ += command;
        out_.append(data);
        std::string_view rest = out_;
        while (!rest.empty()) {
            ssize_t n = ::write(fd_, rest.data(), rest.size());
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) throw Failure("write: " + std::string(n < 0 ? std::strerror(errno) : "closed"));
            rest.remove_prefix(static_cast<std::size_t>(n));
        }
    }

    // One reply packet: its command byte; its data in `data`.
    char receive(std::string& data) {
        unsigned char header[4];
        read_exactly(reinterpret_cast<char*>(header), 4);
        std::uint32_t length = std::uint32_t{header[0]} << 24 | std::uint32_t{header[1]} << 16 |
                               std::uint32_t{header[2]} << 8 | header[3];
        if (length == 0 || length > 1 << 20) throw Failure("bad reply length");
        char command;
        read_exactly(&command, 1);
        data.resize(length - 1);
        read_exactly(data.data(), data.size());
        return command;
    }

private:
    void read_exactly(char* to, std::size_t size) {
        while (size > 0) {
            ssize_t n = ::read(fd_, to, size);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) throw Failure("timeout");
            if (n <= 0) throw Failure(n < 0 ? "read: " + std::string(std::strerror(errno)) : "closed by the filter");
            to += n;
            size -= static_cast<std::size_t>(n);
        }
    }

    int fd_ = -1;
    std::string out_;
};

void put32(std::string& to, std::uint32_t value) {
    for (int shift = 24; shift >= 0; shift -= 8) to += static_cast<char>((value >> shift) & 0xff);
}

std::uint32_t get32(std::string_view from, std::size_t at) {
    if (from.size() < at + 4) throw Failure("short negotiation reply");
    std::uint32_t value = 0;
    for (std::size_t i = 0; i < 4; ++i) value = value << 8 | static_cast<unsigned char>(from[at + i]);
    return value;
}

std::string with_nul(std::string_view a) { return std::string(a) + '\0'; }

class Transaction {
public:
    explicit Transaction(Connection& connection) : connection_(connection) {}

    void negotiate() {
        std::string data;
        put32(data, protocol_version);
        put32(data, offered_actions);
        put32(data, offered_steps);
        connection_.send('O', data);
        if (connection_.receive(reply_) != 'O') throw Failure("no negotiation reply");
        steps_ = get32(reply_, 8);
    }

    // A step: skipped when declined, its reply awaited unless declined too.
    // False when the filter ended the message early (reject, tempfail...).
    bool step(char command, std::string_view data, std::uint32_t declined, std::uint32_t no_reply) {
        if ((steps_ & declined) != 0) return true;
        connection_.send(command, data);
        if ((steps_ & no_reply) != 0) return true;
        char answer = connection_.receive(reply_);
        if (answer == 'c') return true;
        final_ = answer;
        return false;
    }

    void macro(char stage, std::string_view name, std::string_view value) {
        connection_.send('D', std::string(1, stage) + with_nul(name) + with_nul(value));
    }

    // After end of message: modifications, then the final reply.
    char end_of_message(unsigned& modifications) {
        connection_.send('E', {});
        for (;;) {
            char answer = connection_.receive(reply_);
            switch (answer) {
            case 'h':
            case 'm':
            case 'i':
            case '+':
            case '-':
            case '2':
            case 'e':
            case 'b':
            case 'q': ++modifications; continue;
            case 'p':  // progress: the filter is still working
                continue;
            default: return answer;
            }
        }
    }

    char final() const noexcept { return final_; }
    // The data of the last reply read: for the final one, its SMTP reply text.
    const std::string& reply() const noexcept { return reply_; }
    void quit() { connection_.send('Q', {}); }

private:
    Connection& connection_;
    std::string reply_;
    std::uint32_t steps_ = 0;
    char final_ = 'c';
};

// `data`: the reply's data; for a custom reply ('y', what libmilter sends
// after smfi_setreply), the SMTP reply, whose first digit says which.
MilterOutcome outcome_of(char reply, std::string_view data) {
    switch (reply) {
    case 'c':
    case 'a': return MilterOutcome::Continue;
    case 't': return MilterOutcome::Tempfail;
    case 'y': return !data.empty() && data[0] == '5' ? MilterOutcome::Reject : MilterOutcome::Tempfail;
    case 'r':
    case 'd': return MilterOutcome::Reject;
    default: return MilterOutcome::NoAnswer;
    }
}

std::string connect_data(const MilterMessage& m) {
    std::string data = with_nul(m.client_name);
    data += '4';
    data += static_cast<char>(0x30);  // port 12345, big-endian
    data += static_cast<char>(0x39);
    data += with_nul(m.client_addr);
    return data;
}

char run(Transaction& t, const MilterMessage& m, unsigned& modifications) {
    t.negotiate();
    t.macro('C', "{client_addr}", m.client_addr);
    if (!t.step('C', connect_data(m), no_connect, nr_connect)) return t.final();
    if (!t.step('H', with_nul(m.helo), no_helo, nr_helo)) return t.final();
    t.macro('M', "i", m.queue_id);
    if (!t.step('M', with_nul(m.sender), no_mail, nr_mail)) return t.final();
    for (const auto& r : m.recipients)
        if (!t.step('R', with_nul(r), no_rcpt, nr_rcpt)) return t.final();
    if (!t.step('T', {}, no_data, nr_data)) return t.final();
    for (const auto& [name, value] : m.headers)
        if (!t.step('L', with_nul(name) + with_nul(value), no_headers, nr_header)) return t.final();
    if (!t.step('N', {}, no_eoh, nr_eoh)) return t.final();
    if (!t.step('B', m.body, no_body, nr_body)) return t.final();
    t.macro('E', "i", m.queue_id);
    return t.end_of_message(modifications);
}

}  // namespace

MilterClient::MilterClient(std::string socket_path, std::chrono::milliseconds timeout)
    : path_(std::move(socket_path)), timeout_(timeout) {}

MilterResult MilterClient::transaction(const MilterMessage& message) {
    MilterResult result;
    try {
        Connection connection(path_, timeout_);
        Transaction t(connection);
        char final = run(t, message, result.modifications);
        result.outcome = outcome_of(final, t.reply());
        if (result.outcome == MilterOutcome::NoAnswer) result.why = std::string("unexpected reply '") + final + "'";
        t.quit();
    } catch (const Failure& e) {
        result.outcome = MilterOutcome::NoAnswer;
        result.why = e.what();
    }
    return result;
}

const char* milter_outcome_name(MilterOutcome outcome) {
    switch (outcome) {
    case MilterOutcome::Continue: return "continue";
    case MilterOutcome::Tempfail: return "tempfail";
    case MilterOutcome::Reject: return "reject";
    case MilterOutcome::NoAnswer: return "noanswer";
    }
    return "?";
}

}  // namespace unit::toolkit
