#include "policyd/server.hpp"

#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <functional>
#include <limits>
#include <list>
#include <map>
#include <optional>
#include <span>
#include <stdexcept>
#include <thread>
#include <type_traits>

#include "common/endpoint.hpp"
#include "common/log.hpp"
#include "common/metrics_http.hpp"
#include "common/socket_access.hpp"
#include "policyd/conversation.hpp"
#include "policyd/held_mail.hpp"
#include "unit/checked_files.hpp"

namespace unit::policyd {

namespace asio = boost::asio;
using UnixSocket = asio::local::stream_protocol::socket;
using TcpSocket = asio::ip::tcp::socket;
using boost::system::error_code;
using common::Severity;
using Clock = std::chrono::steady_clock;

namespace {

// A connection's read buffer: a whole request of Postfix's in one read.
// Each connection has its own: Asio reads as soon as the socket is
// readable, possibly before the handlers of other connections have run.
constexpr std::size_t read_chunk = 2048;
// Bytes parsed between two looks at the answers waiting: a burst of small
// requests with large answers (alias lists) piles up at most one slice's
// answers past max_pending_output.
constexpr std::size_t feed_slice = 128;
// A connection's turn on its worker: after this much parsing and answering,
// the rest waits for the worker's other connections to have theirs, so that
// a client pipelining thousands of requests cannot delay the others.
constexpr auto turn_budget = std::chrono::microseconds(50);
// Answers a client has not read: beyond max_pending_output waiting here the
// server stops reading from it, and the kernel keeps at most twice (Linux
// doubles it) kernel_send_buffer in the socket. Postfix reads each answer
// at once; these bound the memory, and the work, a client that never reads
// can take, where the kernel's default would let it pin 200 KiB.
constexpr std::size_t max_pending_output = 16 * 1024;
constexpr int kernel_send_buffer = 16 * 1024;
constexpr auto accept_retry_pause = std::chrono::milliseconds(100);
constexpr auto full_warning_interval = std::chrono::minutes(1);  // between two warnings of a full limit
// How long a worker's lookups share one read transaction: a change to the
// replica made in place is seen this much later at most, and a writer in
// rollback-journal mode waits at most this long for the worker's lock.
// Beginning a transaction costs SQLite several file-lock calls and a check
// of its page cache: more than the lookup itself.
constexpr auto snapshot_hold = std::chrono::milliseconds(100);

class SessionBase {
public:
    virtual ~SessionBase() = default;
    virtual void stop() = 0;   // finish sending what was answered, then close
    virtual void evict() = 0;  // close at once: a new client takes this connection's place
};

// An inet client's address (IPv6: its /64), and how many connections it has
// open, for max_connections_per_peer. Unix clients have none.
struct Peer {
    explicit Peer(std::string key) : name(std::move(key)) {}
    const std::string name;
    std::atomic<std::size_t> open{0};
};

// How a connection stands when room must be made, in the order they are
// closed: one that never had a request answered (Postfix's clients send
// their first request as they connect: a connection that says nothing is
// someone else's), then one idle between requests, and last one in the
// middle of a request or with answers unread.
enum class Standing : std::uint8_t { Fresh, Idle, Busy };

// What the accepting thread knows of one connection, to choose which one to
// close when max_connections (or its peer's max_connections_per_peer) are
// open. The session writes the atomics on its worker's thread; the
// accepting thread reads them.
struct Slot {
    Slot(asio::io_context& worker_context, std::shared_ptr<Peer> from)
        : context(worker_context), peer(std::move(from)) {
        if (peer) peer->open++;
    }

    // Takes the connection off connections_open and its peer's count, once:
    // true for whoever does (the session closing, or the acceptor making room).
    bool uncount() noexcept {
        if (!counted.exchange(false)) return false;
        if (peer) peer->open--;
        return true;
    }

    asio::io_context& context;  // the worker that serves it
    const std::shared_ptr<Peer> peer;
    // Steady-clock ticks of the accept or of the last request answered.
    std::atomic<Clock::rep> progress{Clock::now().time_since_epoch().count()};
    std::atomic<Standing> standing{Standing::Fresh};
    std::atomic<bool> counted{true};
    std::weak_ptr<SessionBase> session;  // the worker's thread only
};

// One client connection: reads, lets the Conversation answer, writes the
// answers back in order. Reads and writes overlap (a client may send
// several requests before it reads), but one of each at a time.
//
// Reads are asynchronous reads into the connection's small buffer: after a
// read that emptied the socket, Asio queues the next one without a system
// call, where a wait for readability would cost an epoll_ctl per request.
// One timer watches the
// connection: while it is busy (a request is arriving, or answers wait
// unread) the client has request_timeout from the start of that, otherwise
// idle_timeout from its last answered request. The timer is moved only
// earlier; a later deadline is picked up when it fires, so that a request
// costs no timer operation.
template <class Socket, class Conversation>
class Session : public SessionBase, public std::enable_shared_from_this<Session<Socket, Conversation>> {
public:
    Session(Socket socket, Worker& worker, std::shared_ptr<Slot> slot, const char* protocol)
        : socket_(std::move(socket)), timer_(socket_.get_executor()), worker_(worker), conversation_(worker),
          slot_(std::move(slot)), protocol_(protocol) {}
    // connections_open went up when the acceptor took the connection.
    ~Session() override { release(); }

    void start() {
        slot_->session = this->weak_from_this();
        error_code ignored;
        socket_.set_option(asio::socket_base::send_buffer_size(kernel_send_buffer), ignored);
        deadline_ = Clock::now() + worker_.settings().idle_timeout;
        arm_timer();
        proceed();
    }

    void stop() override {
        closing_ = true;
        error_code ignored;
        socket_.cancel(ignored);  // ends the pending wait, and a write the client does not take
        if (!writing_) close();
    }

    void evict() override {
        common::log(Severity::Debug, "{}: connection closed to make room for a new client", protocol_);
        closing_ = true;
        close();
    }

private:
    // Parses what waits unparsed (after a yield, or once the client has
    // read its answers), then proceeds.
    void resume() {
        if (!closing_ && !unparsed_.empty() && pending_.size() <= max_pending_output) {
            std::string rest;
            rest.swap(unparsed_);
            consume(rest);
        }
        proceed();
    }

    // Sends the answers, then reads on only when everything read is parsed
    // and few answers wait.
    void proceed() {
        flush();
        if (closing_) return;
        const bool backlog = pending_.size() > max_pending_output;  // resumed when a write completes
        if (backlog != paused_) {
            paused_ = backlog;
            watch(Clock::now(), false);
        }
        if (backlog) return;
        if (!unparsed_.empty()) yield();
        else if (!reading_) read();
    }

    // Parses the rest after the worker's other ready connections.
    void yield() {
        if (yielding_) return;
        yielding_ = true;
        asio::post(socket_.get_executor(), [self = this->shared_from_this()] {
            self->yielding_ = false;
            self->resume();
        });
    }

    void read() {
        reading_ = true;
        socket_.async_read_some(asio::buffer(buffer_),
                                [self = this->shared_from_this()](const error_code& ec, std::size_t n) {
                                    self->reading_ = false;
                                    self->on_read(ec, n);
                                });
    }

    void on_read(error_code ec, std::size_t n) {
        if (ec) {  // end of stream, reset, or stop(): send what is answered, then close
            closing_ = true;
            if (!writing_) close();
            return;
        }
        consume(std::string_view(buffer_.data(), n));
        proceed();
    }

    // Feeds the conversation a slice at a time until the answers waiting
    // exceed max_pending_output (the rest waits in unparsed_ until the
    // client has read its answers) or the turn is over.
    void consume(std::string_view bytes) {
        const auto turn_end = Clock::now() + turn_budget;
        bool answered = false, broken = false;
        std::size_t at = 0;
        while (at < bytes.size() && pending_.size() <= max_pending_output && !broken) {
            std::string_view slice = bytes.substr(at, feed_slice);
            at += slice.size();
            const std::size_t before = pending_.size();
            broken = !conversation_.feed(slice, pending_);
            answered = answered || pending_.size() != before;
            if (Clock::now() >= turn_end) break;
        }
        if (broken) {
            common::log(Severity::Warning, "{}: closing the connection", conversation_.error());
            closing_ = true;
        } else {
            unparsed_.append(bytes.substr(at));
        }
        const auto now = Clock::now();
        if (answered) slot_->progress.store(now.time_since_epoch().count(), std::memory_order_relaxed);
        // Postfix writes each request whole: bytes that answer nothing start
        // (or continue) a request still arriving.
        partial_ = !answered && !bytes.empty();
        watch(now, answered);
    }

    void flush() {
        if (writing_) return;
        if (pending_.empty()) {
            if (closing_) close();
            return;
        }
        sending_.swap(pending_);
        writing_ = true;
        asio::async_write(socket_, asio::buffer(sending_),
                          [self = this->shared_from_this()](const error_code& ec, std::size_t) {
                              self->writing_ = false;
                              self->sending_.clear();
                              if (ec) {
                                  self->closing_ = true;
                                  self->close();
                                  return;
                              }
                              self->resume();
                          });
    }

    // Becoming busy (a request arriving, answers waiting unread) gives the
    // client request_timeout; becoming idle, or a request answered, gives it
    // its timeout afresh from now.
    void watch(Clock::time_point now, bool answered) {
        const bool busy = partial_ || paused_;
        answered_once_ = answered_once_ || answered;
        if (busy != busy_ || answered) {
            const auto& s = worker_.settings();
            set_deadline(now + (busy ? s.request_timeout : s.idle_timeout));
            slot_->standing.store(busy             ? Standing::Busy
                                  : answered_once_ ? Standing::Idle
                                                   : Standing::Fresh,
                                  std::memory_order_relaxed);
        }
        busy_ = busy;
    }

    void set_deadline(Clock::time_point at) {
        const bool earlier = at < deadline_;
        deadline_ = at;
        if (earlier) arm_timer();
    }

    void arm_timer() {
        timer_.expires_at(deadline_);
        timer_.async_wait([self = this->shared_from_this()](const error_code& ec) {
            if (!ec && !self->closing_) self->on_deadline();
        });
    }

    void on_deadline() {
        if (Clock::now() < deadline_) {  // moved later since the timer was set
            arm_timer();
            return;
        }
        const auto seconds = [](std::chrono::seconds s) { return s.count(); };
        if (partial_) {
            worker_.stats().connections_closed_slow++;
            common::log(Severity::Warning, "{}: request not complete after {}s: closing the connection", protocol_,
                        seconds(worker_.settings().request_timeout));
        } else if (paused_) {
            worker_.stats().connections_closed_slow++;
            common::log(Severity::Warning, "{}: answers not read for {}s: closing the connection", protocol_,
                        seconds(worker_.settings().request_timeout));
        } else {
            worker_.stats().connections_closed_idle++;
            common::log(Severity::Debug, "{}: idle connection closed", protocol_);
        }
        closing_ = true;
        close();
    }

    void close() {
        error_code ignored;
        timer_.cancel();
        socket_.close(ignored);
        release();
    }

    void release() {
        if (slot_->uncount()) worker_.stats().connections_open--;
    }

    Socket socket_;
    asio::steady_timer timer_;
    Clock::time_point deadline_{};
    Worker& worker_;
    Conversation conversation_;
    std::shared_ptr<Slot> slot_;
    std::array<char, read_chunk> buffer_;
    const char* protocol_;
    std::string unparsed_, pending_, sending_;
    bool reading_ = false, writing_ = false, yielding_ = false, closing_ = false;
    bool partial_ = false, paused_ = false, busy_ = false, answered_once_ = false;
};

// A worker thread: its io_context, its Worker, its live sessions. Its
// lookups share read transactions for up to snapshot_hold (directory.hpp);
// a ticker ends a transaction left open when the connections go quiet.
struct WorkerThread {
    asio::io_context context{1};
    asio::executor_work_guard<asio::io_context::executor_type> guard = asio::make_work_guard(context);
    asio::steady_timer ticker{context};
    bool stopping = false;  // this thread only
    std::unique_ptr<Worker> worker;
    std::list<std::weak_ptr<SessionBase>> sessions;  // touched on this thread only
    std::size_t prune_at = 64;  // forget ended sessions when the list grows this long (amortised O(1))
    std::thread thread;

    template <class Socket, class Conversation>
    void adopt(Socket socket, std::shared_ptr<Slot> slot, const char* protocol) {
        if (sessions.size() >= prune_at) {
            sessions.remove_if([](const auto& w) { return w.expired(); });
            prune_at = 2 * sessions.size() + 64;
        }
        auto session = std::make_shared<Session<Socket, Conversation>>(std::move(socket), *worker, std::move(slot),
                                                                       protocol);
        sessions.push_back(session);
        session->start();
    }

    void tick() {
        ticker.expires_after(snapshot_hold);
        ticker.async_wait([this](const error_code& ec) {
            // A tick already due when stop_sessions() cancelled the timer
            // still runs, with no error: it must not arm the timer again,
            // or the worker's io_context would never run out of work.
            if (ec || stopping) return;
            worker->tick();
            tick();
        });
    }

    void stop_sessions() {
        for (auto& w : sessions)
            if (auto s = w.lock()) s->stop();
        stopping = true;
        ticker.cancel();
        guard.reset();
    }
};

// The connections handed to the workers, to choose which one makes room for
// a new client when max_connections (or max_connections_per_peer) are open,
// and the inet clients' counts. Accepting thread only.
class ConnectionTable {
public:
    // The count shared by every connection from the client of `socket`;
    // null when the client is already gone.
    std::shared_ptr<Peer> peer(const TcpSocket& socket) {
        error_code ec;
        const auto remote = socket.remote_endpoint(ec);
        if (ec) return nullptr;
        std::string name = peer_name(remote.address());
        auto& peer = peers_[name];
        if (!peer) peer = std::make_shared<Peer>(std::move(name));
        return peer;
    }

    void add(std::shared_ptr<Slot> slot, std::size_t open) {
        if (slots_.size() > 2 * open + 64) {  // forget closed ones, amortised O(1) per connection
            std::erase_if(slots_, [](const auto& s) { return !s->counted.load(); });
            std::erase_if(peers_, [](const auto& p) { return p.second.use_count() == 1; });  // no connection left
            fresh_from_ = 0;
        }
        slots_.push_back(std::move(slot));
    }

    // The connection to close for `newcomer` (never itself), among all or
    // `from` one peer's: the first by standing (Fresh, Idle, Busy), then the
    // one that has gone longest without a request answered; null if none.
    std::shared_ptr<Slot> victim(const Slot& newcomer, const Peer* from = nullptr) {
        const auto candidate = [&](const Slot& s) {
            return &s != &newcomer && s.counted.load() && (!from || s.peer.get() == from);
        };
        // Fresh ones in accept order: the first is the one open the longest.
        // A slot never becomes Fresh again once closed or used, so those
        // before the first Fresh one are passed over once, not at every call.
        for (std::size_t i = fresh_from_; i < slots_.size(); ++i) {
            const Slot& s = *slots_[i];
            const bool fresh = s.counted.load() && s.standing.load(std::memory_order_relaxed) == Standing::Fresh;
            if (!fresh && i == fresh_from_) ++fresh_from_;
            if (fresh && candidate(s)) return slots_[i];
        }
        std::shared_ptr<Slot> chosen;
        std::pair<Standing, Clock::rep> chosen_rank{};
        for (const auto& s : slots_) {
            if (!candidate(*s)) continue;
            const std::pair rank{s->standing.load(std::memory_order_relaxed),
                                 s->progress.load(std::memory_order_relaxed)};
            if (!chosen || rank < chosen_rank) chosen = s, chosen_rank = rank;
        }
        return chosen;
    }

private:
    // An IPv4 client by its address, an IPv6 one by its /64: a host
    // usually has a whole /64 to pick addresses from.
    static std::string peer_name(const asio::ip::address& address) {
        if (address.is_v4()) return address.to_string();
        const auto v6 = address.to_v6();
        if (v6.is_v4_mapped()) return asio::ip::make_address_v4(asio::ip::v4_mapped, v6).to_string();
        auto bytes = v6.to_bytes();
        std::fill(bytes.begin() + 8, bytes.end(), 0);
        return asio::ip::address_v6(bytes).to_string() + "/64";
    }

    std::vector<std::shared_ptr<Slot>> slots_;  // in accept order
    std::size_t fresh_from_ = 0;                // no Fresh slot before this index
    std::map<std::string, std::shared_ptr<Peer>> peers_;
};

// Raises the soft limit on open files to the hard one (systemd's default
// soft limit, 1024, is about the default max_connections) and returns how
// many client connections it leaves room for beside the listeners, each
// worker's SQLite files and the event loops.
std::size_t raise_open_file_limit(std::size_t threads) {
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return std::numeric_limits<std::size_t>::max();
    if (limit.rlim_cur < limit.rlim_max) {
        rlimit raised = limit;
        raised.rlim_cur = limit.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
    }
    if (limit.rlim_cur == RLIM_INFINITY) return std::numeric_limits<std::size_t>::max();
    const std::size_t reserved = 64 + 8 * threads;
    return limit.rlim_cur > reserved ? static_cast<std::size_t>(limit.rlim_cur) - reserved : 1;
}

void prepare_unix_path(const std::string& path) {
    struct stat st {};
    if (lstat(path.c_str(), &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) throw std::runtime_error(fmt::format("{}: exists and is not a socket", path));
        unlink(path.c_str());
    }
}

// Binds a unix listener that only its owner can reach until it has
// socket_group, then socket_mode.
std::unique_ptr<asio::local::stream_protocol::acceptor> bind_unix(asio::io_context& io, const std::string& path,
                                                                  const Settings& s) {
    const auto gid = common::socket_group_id(s.socket_group);
    prepare_unix_path(path);
    std::unique_ptr<asio::local::stream_protocol::acceptor> acceptor;
    {
        common::OwnerOnlyUmask owner_only;
        acceptor =
            std::make_unique<asio::local::stream_protocol::acceptor>(io, asio::local::stream_protocol::endpoint(path));
    }
    common::set_socket_access(path, s.socket_mode, gid);
    return acceptor;
}

// An inet listener beyond loopback lets every host that reaches it read the
// directory and use up connections: said once, at start-up.
void warn_unless_loopback(const common::Endpoint& endpoint, const asio::ip::address& address) {
    const bool loopback = address.is_v4() ? address.to_v4().is_loopback()
                          : address.to_v6().is_v4_mapped()
                              ? asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6()).is_loopback()
                              : address.to_v6().is_loopback();
    if (!loopback)
        common::log(Severity::Warning,
                    "{}: listening on {}, not loopback: every host that reaches it can query the directory; "
                    "keep it behind a packet filter",
                    endpoint.text, address.to_string());
}

}  // namespace

// ------------------------------------------------------------ Server::Impl

struct Server::Impl {
    std::shared_ptr<const Settings> settings;
    // What the daemon started with: the settings a reload cannot apply
    // keep these values (kept_on_reload(), settings.hpp).
    std::shared_ptr<const Settings> started_with;
    Reload reload;
    Stats stats;
    std::shared_ptr<ValidationCache> validation;
    asio::io_context main{1};
    asio::signal_set signals{main, SIGHUP, SIGTERM, SIGINT};
    std::vector<std::unique_ptr<WorkerThread>> workers;
    std::size_t next_worker = 0;
    std::vector<std::unique_ptr<asio::local::stream_protocol::acceptor>> unix_acceptors;
    std::vector<std::unique_ptr<asio::ip::tcp::acceptor>> tcp_acceptors;
    std::unique_ptr<asio::local::stream_protocol::acceptor> control;
    std::unique_ptr<common::MetricsServer> metrics;  // its own thread: a slow scraper never delays mail
    std::unique_ptr<HeldMailWatcher> held;           // its own thread: postqueue never delays mail
    std::vector<std::string> socket_files;
    ConnectionTable connections;
    std::size_t connection_capacity = std::numeric_limits<std::size_t>::max();  // what the open file limit allows
    std::optional<Clock::time_point> last_full_warning, last_peer_warning;
    bool accept_failing = false;
    bool stopping = false;

    WorkerThread& pick_worker() { return *workers[next_worker++ % workers.size()]; }
    std::size_t connection_limit() const {
        return std::min<std::size_t>(settings->max_connections, connection_capacity);
    }

    void bind(const std::string& text, bool policy);
    template <class Acceptor, class Socket>
    void accept(Acceptor& acceptor, bool policy);
    void retry_accept_later(const error_code& ec, std::function<void()> again);
    std::shared_ptr<Slot> admit(WorkerThread& worker, std::shared_ptr<Peer> peer);
    bool make_room(const Slot& newcomer);
    static bool due(std::optional<Clock::time_point>& last);
    void check_file_limit() const;
    void accept_control();
    void on_signal(int signal);
    void stop();
};

void Server::Impl::bind(const std::string& text, bool policy) {
    auto endpoint = common::parse_endpoint(text);
    if (!endpoint) throw std::runtime_error(endpoint.error().message);
    if (endpoint->kind == common::Endpoint::Kind::Unix) {
        auto a = bind_unix(main, endpoint->path, *settings);
        socket_files.push_back(endpoint->path);
        accept<asio::local::stream_protocol::acceptor, UnixSocket>(*a, policy);
        unix_acceptors.push_back(std::move(a));
    } else {
        asio::ip::tcp::endpoint where(asio::ip::address_v4::any(), endpoint->port);
        if (!endpoint->host.empty()) {  // a name or an address; the first answer is used
            asio::ip::tcp::resolver resolver(main);
            where = *resolver.resolve(endpoint->host, std::to_string(endpoint->port)).begin();
        }
        warn_unless_loopback(*endpoint, where.address());
        auto a = std::make_unique<asio::ip::tcp::acceptor>(main, where);
        accept<asio::ip::tcp::acceptor, TcpSocket>(*a, policy);
        tcp_acceptors.push_back(std::move(a));
    }
}

// Every client is accepted at once: at max_connections (or its peer's
// max_connections_per_peer) another connection makes room (make_room), so
// idle or slow connections never leave Postfix's own clients waiting in the
// kernel queue.
template <class Acceptor, class Socket>
void Server::Impl::accept(Acceptor& acceptor, bool policy) {
    if (stopping) return;
    WorkerThread& worker = pick_worker();
    acceptor.async_accept(worker.context, [this, &acceptor, &worker, policy](const error_code& ec, Socket socket) {
        if (ec == asio::error::operation_aborted) return;
        if (ec) {
            retry_accept_later(ec, [this, &acceptor, policy] { accept<Acceptor, Socket>(acceptor, policy); });
            return;
        }
        accept_failing = false;
        std::shared_ptr<Peer> peer;
        if constexpr (std::is_same_v<Socket, TcpSocket>) peer = connections.peer(socket);
        auto slot = admit(worker, std::move(peer));
        if (!slot) {  // refused: see make_room()
            error_code ignored;
            socket.close(ignored);
            accept<Acceptor, Socket>(acceptor, policy);
            return;
        }
        asio::post(worker.context, [&worker, policy, slot, socket = std::move(socket)]() mutable {
            if (policy) worker.adopt<Socket, PolicyConversation>(std::move(socket), std::move(slot), "policy");
            else worker.adopt<Socket, SocketmapConversation>(std::move(socket), std::move(slot), "socketmap");
        });
        accept<Acceptor, Socket>(acceptor, policy);
    });
}

// A client gone before it was accepted is no problem; anything else (out of
// descriptors or memory) is logged once and retried after a pause rather
// than in a busy loop.
void Server::Impl::retry_accept_later(const error_code& ec, std::function<void()> again) {
    if (ec == asio::error::connection_aborted) {
        again();
        return;
    }
    if (!accept_failing) common::log(Severity::Warning, "accept: {}", ec.message());
    accept_failing = true;
    auto pause = std::make_shared<asio::steady_timer>(main, accept_retry_pause);
    pause->async_wait([pause, again = std::move(again)](const error_code&) { again(); });
}

// Counts a new connection, before the next accept, so that the limits hold
// exactly, and makes room for it when one is passed; null when it is
// refused instead.
std::shared_ptr<Slot> Server::Impl::admit(WorkerThread& worker, std::shared_ptr<Peer> peer) {
    stats.connections_accepted++;
    const std::size_t open = ++stats.connections_open;
    auto slot = std::make_shared<Slot>(worker.context, std::move(peer));
    connections.add(slot, open);
    if (make_room(*slot)) return slot;
    if (slot->uncount()) stats.connections_open--;
    stats.connections_closed_peer++;
    return nullptr;
}

// Closes connections until the newcomer's peer has no more than
// max_connections_per_peer open (among its own), and no more than the
// limit are open in all (among everyone's), choosing as victim() does: one
// that never had a request answered, then the one idle the longest, and a
// busy one only when there is no other. Postfix's clients reconnect when
// they find theirs closed. A peer past its limit that still holds a
// connection it never used gets its new one refused instead (false): the
// same choice, the newest unused rather than the oldest, and far cheaper
// against a client reopening hundreds of connections at once (no session
// made, none closed on a worker thread).
bool Server::Impl::make_room(const Slot& newcomer) {
    const auto close = [this](const std::shared_ptr<Slot>& victim, Stats::Counter& reason) {
        if (!victim->uncount()) return;  // it closed by itself meanwhile
        stats.connections_open--;
        reason++;
        asio::post(victim->context, [victim] {
            if (auto session = victim->session.lock()) session->evict();
        });
    };
    const std::size_t per_peer = settings->max_connections_per_peer;
    while (newcomer.peer && newcomer.peer->open.load() > per_peer) {
        auto victim = connections.victim(newcomer, newcomer.peer.get());
        if (due(last_peer_warning))
            common::log(Severity::Warning,
                        "max_connections_per_peer ({}) reached by {}: closing its new connections while it holds "
                        "unused ones, else its connections idle the longest",
                        per_peer, newcomer.peer->name);
        if (!victim || victim->standing.load(std::memory_order_relaxed) == Standing::Fresh) return false;
        close(victim, stats.connections_closed_peer);
    }
    const std::size_t limit = connection_limit();
    while (stats.connections_open.load() > limit) {
        auto victim = connections.victim(newcomer);
        if (!victim) break;
        close(victim, stats.connections_closed_full);
        if (due(last_full_warning))
            common::log(Severity::Warning,
                        "max_connections ({}) reached: closing the connections idle the longest to make room for new "
                        "clients",
                        limit);
    }
    return true;
}

// Whether a warning said at most once a minute is due now; if so, it is.
bool Server::Impl::due(std::optional<Clock::time_point>& last) {
    const auto now = Clock::now();
    if (last && now - *last < full_warning_interval) return false;
    last = now;
    return true;
}

void Server::Impl::check_file_limit() const {
    if (settings->max_connections > connection_capacity)
        common::log(Severity::Warning, "max_connections: the open file limit leaves room for {} connections only",
                    connection_capacity);
}

void Server::Impl::accept_control() {
    control->async_accept([this](const error_code& ec, UnixSocket socket) {
        if (ec == asio::error::operation_aborted) return;
        if (!ec) {
            ReplicaView replica;
            replica.validating = validation->under_way().has_value();
            auto reply = std::make_shared<std::string>(stats_json(stats, replica) + "\n");
            auto client = std::make_shared<UnixSocket>(std::move(socket));
            asio::async_write(*client, asio::buffer(*reply), [reply, client](const error_code&, std::size_t) {});
        }
        accept_control();
    });
}

void Server::Impl::on_signal(int signal) {
    if (signal == SIGHUP) {
        if (auto fresh = reload()) {
            const auto kept = kept_on_reload(*started_with, *fresh);
            settings = fresh;
            held->reconfigure(fresh);
            for (auto& w : workers) asio::post(w->context, [&w, fresh] { w->worker->reconfigure(fresh); });
            common::log(kept.empty() ? Severity::Info : Severity::Warning, "{}", kept.message());
            check_file_limit();
        }
        signals.async_wait([this](const error_code& ec, int s) {
            if (!ec) on_signal(s);
        });
        return;
    }
    common::log(Severity::Info, "stopping on signal {}", signal);
    stop();
}

void Server::Impl::stop() {
    stopping = true;
    error_code ignored;
    for (auto& a : unix_acceptors) a->close(ignored);
    for (auto& a : tcp_acceptors) a->close(ignored);
    if (control) control->close(ignored);
    signals.cancel(ignored);
    for (const auto& path : socket_files) unlink(path.c_str());
    for (auto& w : workers) asio::post(w->context, [&w] { w->stop_sessions(); });
}

// ------------------------------------------------------------ Server

Server::Server(std::shared_ptr<const Settings> settings, Reload reload) : impl_(std::make_unique<Impl>()) {
    Impl& s = *impl_;
    s.settings = std::move(settings);
    s.started_with = s.settings;
    s.reload = std::move(reload);
    s.validation = std::make_shared<ValidationCache>(ValidationCache::Mode::Background,
                                                     checked_files_in(s.settings->cache_directory));
    unsigned threads = s.settings->threads ? s.settings->threads : std::max(1u, std::thread::hardware_concurrency());
    for (unsigned i = 0; i < threads; ++i) {
        auto w = std::make_unique<WorkerThread>();
        w->worker = std::make_unique<Worker>(s.settings, s.stats, s.validation, snapshot_hold);
        w->tick();
        s.workers.push_back(std::move(w));
    }
    s.held = std::make_unique<HeldMailWatcher>(s.settings, s.stats, s.validation);
    s.connection_capacity = raise_open_file_limit(threads);
    s.check_file_limit();
    try {
        for (const auto& e : s.settings->policy_listen) s.bind(e, true);
        for (const auto& e : s.settings->socketmap_listen) s.bind(e, false);
        if (!s.settings->control.empty()) {
            prepare_unix_path(s.settings->control);
            common::OwnerOnlyUmask owner_only;  // mode 0600: counters are for the administrator
            s.control = std::make_unique<asio::local::stream_protocol::acceptor>(
                s.main, asio::local::stream_protocol::endpoint(s.settings->control));
            s.socket_files.push_back(s.settings->control);
            s.accept_control();
        }
        if (!s.settings->metrics.empty()) {
            auto where = common::parse_endpoint(s.settings->metrics);
            if (!where) throw std::runtime_error(fmt::format("metrics: {}", where.error().message));
            s.metrics = std::make_unique<common::MetricsServer>(*where,
                                                                [&stats = s.stats] { return stats_prometheus(stats); });
        }
    } catch (const boost::system::system_error& e) {
        throw std::runtime_error(fmt::format("listen: {}", e.what()));
    }
    s.signals.async_wait([&s](const error_code& ec, int signal) {
        if (!ec) s.on_signal(signal);
    });
}

Server::~Server() = default;

Stats& Server::stats() noexcept { return impl_->stats; }

void Server::run() {
    if (impl_->metrics) impl_->metrics->start();
    for (auto& w : impl_->workers) w->thread = std::thread([&w] { w->context.run(); });
    impl_->held->start();
    impl_->main.run();
    for (auto& w : impl_->workers) w->thread.join();
    impl_->held->stop();
}

}  // namespace unit::policyd
