#include "common/metrics_http.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <list>
#include <memory>
#include <optional>
#include <stdexcept>
#include <thread>

namespace unit::common {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

// A scraper sends its request as it connects and reads the reply at once.
constexpr auto request_time_limit = std::chrono::seconds(3);
constexpr auto reply_time_limit = std::chrono::seconds(5);
constexpr std::uint32_t max_header_bytes = 8 * 1024;
constexpr const char* content_type = "text/plain; version=0.0.4; charset=utf-8";

void append_escaped(std::string& out, std::string_view value) {
    for (char c : value) {
        if (c == '\\') out += "\\\\";
        else if (c == '"') out += "\\\"";
        else if (c == '\n') out += "\\n";
        else out += c;
    }
}

const char* type_name(MetricsText::Type type) {
    switch (type) {
    case MetricsText::Type::Counter: return "counter";
    case MetricsText::Type::Gauge: return "gauge";
    case MetricsText::Type::Histogram: return "histogram";
    }
    return "untyped";
}

}  // namespace

void MetricsText::family(std::string_view name, Type type, std::string_view help) {
    fmt::format_to(std::back_inserter(text_), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type_name(type));
}

void MetricsText::sample(std::string_view name, double value, const Labels& labels) {
    text_ += name;
    if (!labels.empty()) {
        text_ += '{';
        for (std::size_t i = 0; i < labels.size(); ++i) {
            if (i > 0) text_ += ',';
            text_ += labels[i].first;
            text_ += "=\"";
            append_escaped(text_, labels[i].second);
            text_ += '"';
        }
        text_ += '}';
    }
    fmt::format_to(std::back_inserter(text_), " {}\n", value);
}

namespace {

// One scrape: read a request within the time limit, answer, close.
class Session : public std::enable_shared_from_this<Session> {
public:
    Session(tcp::socket socket, const MetricsServer::Render& render) : stream_(std::move(socket)), render_(render) {}

    void run() {
        parser_.emplace();
        parser_->header_limit(max_header_bytes);
        parser_->body_limit(0);
        stream_.expires_after(request_time_limit);
        http::async_read(stream_, buffer_, *parser_,
                         [self = shared_from_this()](beast::error_code ec, std::size_t) { self->answer(ec); });
    }

    // Still waiting for its whole request: such a connection makes room for a new one.
    bool waiting() const noexcept { return waiting_ && stream_.socket().is_open(); }
    void close() noexcept { stream_.close(); }

private:
    void answer(beast::error_code ec) {
        waiting_ = false;
        if (ec) return;  // timed out, closed or malformed: nothing to answer
        const auto& request = parser_->get();
        response_.version(request.version());
        response_.keep_alive(false);
        response_.set(http::field::server, "unitpolicy");
        if (request.method() != http::verb::get && request.method() != http::verb::head) {
            respond(http::status::method_not_allowed, "text/plain", "GET /metrics\n");
        } else if (request.target() != "/metrics") {
            respond(http::status::not_found, "text/plain", "GET /metrics\n");
        } else {
            respond(http::status::ok, content_type, render_());
            if (request.method() == http::verb::head) response_.body().clear();
        }
        stream_.expires_after(reply_time_limit);
        http::async_write(stream_, response_, [self = shared_from_this()](beast::error_code, std::size_t) {
            beast::error_code ignored;
            self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
        });
    }

    void respond(http::status status, const char* type, std::string body) {
        response_.result(status);
        response_.set(http::field::content_type, type);
        response_.body() = std::move(body);
        response_.prepare_payload();
    }

    beast::tcp_stream stream_;
    beast::flat_buffer buffer_;
    std::optional<http::request_parser<http::empty_body>> parser_;
    http::response<http::string_body> response_;
    const MetricsServer::Render& render_;
    bool waiting_ = true;
};

}  // namespace

// Destroyed from the bottom up: the io_context's pending handlers own the
// sessions, and go before the rendering function they use.
struct MetricsServer::Impl {
    Render render;
    std::list<std::weak_ptr<Session>> sessions;  // in accept order; the server thread only
    asio::io_context io{1};
    tcp::acceptor acceptor{io};
    std::thread thread;

    void accept();
    void admit(tcp::socket socket);
};

void MetricsServer::Impl::accept() {
    acceptor.async_accept([this](beast::error_code ec, tcp::socket socket) {
        if (ec == asio::error::operation_aborted) return;
        if (!ec) admit(std::move(socket));
        accept();  // a failed connection just closes
    });
}

// Past max_connections, the connection that has waited longest for its
// request is closed to make room; when every one is being answered, the new
// one is closed instead.
void MetricsServer::Impl::admit(tcp::socket socket) {
    sessions.remove_if([](const auto& w) { return w.expired(); });
    if (sessions.size() >= max_connections) {
        auto oldest = std::find_if(sessions.begin(), sessions.end(), [](const auto& w) {
            auto s = w.lock();
            return s && s->waiting();
        });
        if (oldest == sessions.end()) return;
        oldest->lock()->close();
        sessions.erase(oldest);
    }
    auto session = std::make_shared<Session>(std::move(socket), render);
    sessions.push_back(session);
    session->run();
}

MetricsServer::MetricsServer(const Endpoint& where, Render render) : impl_(std::make_unique<Impl>()) {
    if (where.kind != Endpoint::Kind::Inet)
        throw std::runtime_error(fmt::format("metrics: {}: an inet:host:port endpoint is required", where.text));
    impl_->render = std::move(render);
    try {
        tcp::resolver resolver(impl_->io);
        auto host = where.host.empty() ? std::string("0.0.0.0") : where.host;
        auto results = resolver.resolve(host, std::to_string(where.port), tcp::resolver::numeric_service);
        tcp::endpoint endpoint = results.begin()->endpoint();
        impl_->acceptor.open(endpoint.protocol());
        impl_->acceptor.set_option(tcp::acceptor::reuse_address(true));
        impl_->acceptor.bind(endpoint);
        impl_->acceptor.listen();
    } catch (const std::exception& e) {
        throw std::runtime_error(fmt::format("metrics: {}: {}", where.text, e.what()));
    }
}

MetricsServer::~MetricsServer() {
    if (impl_->thread.joinable()) {
        impl_->io.stop();
        impl_->thread.join();
    }
}

void MetricsServer::start() {
    impl_->accept();
    impl_->thread = std::thread([this] { impl_->io.run(); });
}

std::uint16_t MetricsServer::port() const noexcept {
    beast::error_code ec;
    auto endpoint = impl_->acceptor.local_endpoint(ec);
    return ec ? 0 : endpoint.port();
}

}  // namespace unit::common
