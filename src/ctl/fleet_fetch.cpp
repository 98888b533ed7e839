#include "ctl/fleet_fetch.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <fmt/format.h>

#include <memory>

namespace unit::ctl {

namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

// One host's request; owned by its pending handlers.
struct Request : std::enable_shared_from_this<Request> {
    Request(asio::io_context& io, const FleetHost& host, Fetched& out)
        : resolver(io), socket(io), timer(io), host(host), out(out) {}

    void start(std::chrono::milliseconds timeout) {
        timer.expires_after(timeout);
        timer.async_wait([self = shared_from_this(), timeout](const error_code& ec) {
            if (ec || self->done) return;
            self->fail(fmt::format("no answer within {} ms", timeout.count()));
        });
        resolver.async_resolve(host.host, host.port,
                               [self = shared_from_this()](const error_code& ec, tcp::resolver::results_type found) {
                                   if (ec) return self->fail_on("resolve", ec);
                                   self->connect(found);
                               });
    }

    void connect(const tcp::resolver::results_type& found) {
        asio::async_connect(socket, found, [self = shared_from_this()](const error_code& ec, const tcp::endpoint&) {
            if (ec) return self->fail_on("connect", ec);
            self->send();
        });
    }

    void send() {
        request = {http::verb::get, host.target, 11};
        request.set(http::field::host, host.host);
        request.set(http::field::user_agent, "unitctl");
        request.set(http::field::connection, "close");
        http::async_write(socket, request, [self = shared_from_this()](const error_code& ec, std::size_t) {
            if (ec) return self->fail_on("send", ec);
            self->receive();
        });
    }

    void receive() {
        parser.body_limit(max_body);
        http::async_read(socket, buffer, parser, [self = shared_from_this()](const error_code& ec, std::size_t) {
            if (ec) return self->fail_on("reply", ec);
            auto& reply = self->parser.get();
            if (reply.result() != http::status::ok)
                return self->fail(fmt::format("HTTP {} {}", reply.result_int(), std::string(reply.reason())));
            self->finish(std::move(reply.body()), {});
        });
    }

    void fail_on(std::string_view stage, const error_code& ec) {
        if (done) return;  // the deadline already said why
        fail(fmt::format("{}: {}", stage, ec.message()));
    }
    void fail(std::string why) { finish({}, std::move(why)); }

    void finish(std::string body, std::string error) {
        if (done) return;
        done = true;
        out.body = std::move(body);
        out.error = std::move(error);
        timer.cancel();
        resolver.cancel();
        error_code ignored;
        socket.close(ignored);  // ends whatever is still pending
    }

    tcp::resolver resolver;
    tcp::socket socket;
    asio::steady_timer timer;
    const FleetHost& host;
    Fetched& out;
    bool done = false;
    http::request<http::empty_body> request;
    boost::beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
};

}  // namespace

std::vector<Fetched> fetch_all(const std::vector<FleetHost>& hosts, std::chrono::milliseconds timeout) {
    std::vector<Fetched> results(hosts.size());
    asio::io_context io;
    for (std::size_t i = 0; i < hosts.size(); ++i) std::make_shared<Request>(io, hosts[i], results[i])->start(timeout);
    io.run();
    return results;
}

}  // namespace unit::ctl
