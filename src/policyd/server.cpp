#include "policyd/server.hpp"

#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <fmt/format.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <list>
#include <stdexcept>
#include <thread>

#include "common/endpoint.hpp"
#include "common/log.hpp"
#include "policyd/conversation.hpp"

namespace unit::policyd {

namespace asio = boost::asio;
using UnixSocket = asio::local::stream_protocol::socket;
using TcpSocket = asio::ip::tcp::socket;
using common::Severity;
using boost::system::error_code;

namespace {

constexpr std::size_t read_chunk = 16 * 1024;
constexpr std::size_t max_pending_output = 1024 * 1024;  // stop reading from a client that does not read

class SessionBase {
public:
    virtual ~SessionBase() = default;
    virtual void stop() = 0;  // finish sending what was answered, then close
};

// One client connection: reads, lets the Conversation answer, writes the
// answers back in order. Reads and writes overlap (Postfix may send several
// requests before it reads), but one of each at a time.
template <class Socket, class Conversation>
class Session : public SessionBase, public std::enable_shared_from_this<Session<Socket, Conversation>> {
public:
    Session(Socket socket, Worker& worker, const char* protocol)
        : socket_(std::move(socket)), idle_(socket_.get_executor()), worker_(worker), conversation_(worker),
          protocol_(protocol) {}
    // connections_open went up when the acceptor took the connection.
    ~Session() override { worker_.stats().connections_open--; }

    void start() {
        arm_idle_timer();
        read();
    }

    void stop() override {
        closing_ = true;
        error_code ignored;
        socket_.cancel(ignored);  // ends the pending read; a pending write completes
        if (!writing_) close();
    }

private:
    void arm_idle_timer() {
        idle_.expires_after(worker_.settings().idle_timeout);
        idle_.async_wait([self = this->shared_from_this()](const error_code& ec) {
            if (ec || self->closing_) return;
            self->worker_.stats().connections_closed_idle++;
            common::log(Severity::Debug, "{}: idle connection closed", self->protocol_);
            self->closing_ = true;
            self->close();
        });
    }

    void read() {
        if (closing_) return;
        if (pending_.size() > max_pending_output) {
            paused_ = true;  // resumed when the client has read its answers
            return;
        }
        socket_.async_read_some(asio::buffer(buffer_), [self = this->shared_from_this()](const error_code& ec,
                                                                                          std::size_t n) {
            self->on_read(ec, n);
        });
    }

    void on_read(const error_code& ec, std::size_t n) {
        if (ec) {  // end of stream, reset, or stop(): send what is answered, then close
            closing_ = true;
            if (!writing_) close();
            return;
        }
        arm_idle_timer();
        if (!conversation_.feed(std::string_view(buffer_.data(), n), pending_)) {
            common::log(Severity::Warning, "{}: closing the connection", conversation_.error());
            closing_ = true;
        }
        flush();
        read();
    }

    void flush() {
        if (writing_) return;
        if (pending_.empty()) {
            if (closing_) close();
            return;
        }
        sending_.swap(pending_);
        writing_ = true;
        asio::async_write(socket_, asio::buffer(sending_), [self = this->shared_from_this()](const error_code& ec,
                                                                                             std::size_t) {
            self->writing_ = false;
            self->sending_.clear();
            if (ec) {
                self->closing_ = true;
                self->close();
                return;
            }
            self->flush();
            if (self->paused_ && !self->closing_) {
                self->paused_ = false;
                self->read();
            }
        });
    }

    void close() {
        error_code ignored;
        idle_.cancel();
        socket_.close(ignored);
    }

    Socket socket_;
    asio::steady_timer idle_;
    Worker& worker_;
    Conversation conversation_;
    const char* protocol_;
    std::array<char, read_chunk> buffer_{};
    std::string pending_, sending_;
    bool writing_ = false, closing_ = false, paused_ = false;
};

// A worker thread: its io_context, its Worker, its live sessions.
struct WorkerThread {
    asio::io_context context{1};
    asio::executor_work_guard<asio::io_context::executor_type> guard = asio::make_work_guard(context);
    std::unique_ptr<Worker> worker;
    std::list<std::weak_ptr<SessionBase>> sessions;  // touched on this thread only
    std::thread thread;

    template <class Socket, class Conversation>
    void adopt(Socket socket, const char* protocol) {
        sessions.remove_if([](const auto& w) { return w.expired(); });
        auto session = std::make_shared<Session<Socket, Conversation>>(std::move(socket), *worker, protocol);
        sessions.push_back(session);
        session->start();
    }

    void stop_sessions() {
        for (auto& w : sessions)
            if (auto s = w.lock()) s->stop();
        guard.reset();
    }
};

void prepare_unix_path(const std::string& path) {
    struct stat st {};
    if (lstat(path.c_str(), &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) throw std::runtime_error(fmt::format("{}: exists and is not a socket", path));
        unlink(path.c_str());
    }
}

void set_socket_access(const std::string& path, const Settings& s) {
    if (chmod(path.c_str(), static_cast<mode_t>(s.socket_mode)) != 0)
        throw std::runtime_error(fmt::format("{}: chmod: {}", path, std::strerror(errno)));
    if (s.socket_group.empty()) return;
    struct group* g = getgrnam(s.socket_group.c_str());
    if (g == nullptr) throw std::runtime_error(fmt::format("socket_group: no such group \"{}\"", s.socket_group));
    if (chown(path.c_str(), static_cast<uid_t>(-1), g->gr_gid) != 0)
        throw std::runtime_error(fmt::format("{}: chown: {}", path, std::strerror(errno)));
}

}  // namespace

// ------------------------------------------------------------ Server::Impl

struct Server::Impl {
    std::shared_ptr<const Settings> settings;
    Reload reload;
    Stats stats;
    std::shared_ptr<ValidationCache> validation = std::make_shared<ValidationCache>();
    asio::io_context main{1};
    asio::signal_set signals{main, SIGHUP, SIGTERM, SIGINT};
    std::vector<std::unique_ptr<WorkerThread>> workers;
    std::size_t next_worker = 0;
    std::vector<std::unique_ptr<asio::local::stream_protocol::acceptor>> unix_acceptors;
    std::vector<std::unique_ptr<asio::ip::tcp::acceptor>> tcp_acceptors;
    std::unique_ptr<asio::local::stream_protocol::acceptor> control;
    std::vector<std::string> socket_files;
    bool stopping = false;

    WorkerThread& pick_worker() { return *workers[next_worker++ % workers.size()]; }
    bool at_connection_limit() const { return stats.connections_open.load() >= settings->max_connections; }

    void bind(const std::string& text, bool policy);
    template <class Acceptor, class Socket>
    void accept(Acceptor& acceptor, bool policy);
    void accept_control();
    void on_signal(int signal);
    void stop();
};

void Server::Impl::bind(const std::string& text, bool policy) {
    auto endpoint = common::parse_endpoint(text);
    if (!endpoint) throw std::runtime_error(endpoint.error().message);
    if (endpoint->kind == common::Endpoint::Kind::Unix) {
        prepare_unix_path(endpoint->path);
        auto a = std::make_unique<asio::local::stream_protocol::acceptor>(
            main, asio::local::stream_protocol::endpoint(endpoint->path));
        set_socket_access(endpoint->path, *settings);
        socket_files.push_back(endpoint->path);
        accept<asio::local::stream_protocol::acceptor, UnixSocket>(*a, policy);
        unix_acceptors.push_back(std::move(a));
    } else {
        asio::ip::tcp::endpoint where(asio::ip::address_v4::any(), endpoint->port);
        if (!endpoint->host.empty()) {  // a name or an address; the first answer is used
            asio::ip::tcp::resolver resolver(main);
            where = *resolver.resolve(endpoint->host, std::to_string(endpoint->port)).begin();
        }
        auto a = std::make_unique<asio::ip::tcp::acceptor>(main, where);
        accept<asio::ip::tcp::acceptor, TcpSocket>(*a, policy);
        tcp_acceptors.push_back(std::move(a));
    }
}

template <class Acceptor, class Socket>
void Server::Impl::accept(Acceptor& acceptor, bool policy) {
    if (stopping) return;
    if (at_connection_limit()) {  // let the kernel queue the next clients until a connection ends
        auto pause = std::make_shared<asio::steady_timer>(main, std::chrono::milliseconds(20));
        pause->async_wait([this, pause, &acceptor, policy](const error_code&) { accept<Acceptor, Socket>(acceptor, policy); });
        return;
    }
    WorkerThread& worker = pick_worker();
    acceptor.async_accept(worker.context, [this, &acceptor, &worker, policy](const error_code& ec, Socket socket) {
        if (ec == asio::error::operation_aborted) return;
        if (ec) {
            common::log(Severity::Warning, "accept: {}", ec.message());
        } else {
            // Counted here, before the next accept, so that max_connections holds exactly.
            stats.connections_accepted++;
            stats.connections_open++;
            asio::post(worker.context, [&worker, policy, socket = std::move(socket)]() mutable {
                if (policy) worker.adopt<Socket, PolicyConversation>(std::move(socket), "policy");
                else worker.adopt<Socket, SocketmapConversation>(std::move(socket), "socketmap");
            });
        }
        accept<Acceptor, Socket>(acceptor, policy);
    });
}

void Server::Impl::accept_control() {
    control->async_accept([this](const error_code& ec, UnixSocket socket) {
        if (ec == asio::error::operation_aborted) return;
        if (!ec) {
            auto reply = std::make_shared<std::string>(stats_json(stats) + "\n");
            auto client = std::make_shared<UnixSocket>(std::move(socket));
            asio::async_write(*client, asio::buffer(*reply), [reply, client](const error_code&, std::size_t) {});
        }
        accept_control();
    });
}

void Server::Impl::on_signal(int signal) {
    if (signal == SIGHUP) {
        if (auto fresh = reload()) {
            settings = fresh;
            for (auto& w : workers)
                asio::post(w->context, [&w, fresh] { w->worker->reconfigure(fresh); });
            common::log(Severity::Info, "reload: configuration reloaded");
        }
        signals.async_wait([this](const error_code& ec, int s) { if (!ec) on_signal(s); });
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
    s.reload = std::move(reload);
    unsigned threads = s.settings->threads ? s.settings->threads : std::max(1u, std::thread::hardware_concurrency());
    for (unsigned i = 0; i < threads; ++i) {
        auto w = std::make_unique<WorkerThread>();
        w->worker = std::make_unique<Worker>(s.settings, s.stats, s.validation);
        s.workers.push_back(std::move(w));
    }
    try {
        for (const auto& e : s.settings->policy_listen) s.bind(e, true);
        for (const auto& e : s.settings->socketmap_listen) s.bind(e, false);
        if (!s.settings->control.empty()) {
            prepare_unix_path(s.settings->control);
            s.control = std::make_unique<asio::local::stream_protocol::acceptor>(
                s.main, asio::local::stream_protocol::endpoint(s.settings->control));
            if (chmod(s.settings->control.c_str(), 0600) != 0)  // counters are for the administrator
                throw std::runtime_error(fmt::format("{}: chmod: {}", s.settings->control, std::strerror(errno)));
            s.socket_files.push_back(s.settings->control);
            s.accept_control();
        }
    } catch (const boost::system::system_error& e) {
        throw std::runtime_error(fmt::format("listen: {}", e.what()));
    }
    s.signals.async_wait([&s](const error_code& ec, int signal) { if (!ec) s.on_signal(signal); });
}

Server::~Server() = default;

Stats& Server::stats() noexcept { return impl_->stats; }

void Server::run() {
    for (auto& w : impl_->workers) w->thread = std::thread([&w] { w->context.run(); });
    impl_->main.run();
    for (auto& w : impl_->workers) w->thread.join();
}

}  // namespace unit::policyd
