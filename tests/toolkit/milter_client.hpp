// milter_client.hpp: a minimal MTA side of the milter protocol (version 6,
// as libmilter and Postfix's milter8.c speak it), enough to drive a filter
// through whole message transactions (the benchmark, any test).
//
// Contract:
// - MilterClient::transaction() opens a connection, negotiates (offering
//   every action and every protocol step, as Postfix does), then sends
//   connect, helo, mail, rcpt, data, headers, end of headers, body and end
//   of message, skipping the steps the filter declined and reading no
//   reply where it asked for none; it reads the end-of-message
//   modifications up to the final reply, sends quit and closes.
// - The outcome is the final reply's: Continue (continue, accept), Reject
//   (reject, discard, a custom 5xx reply), Tempfail (tempfail, a custom
//   4xx reply).
// - It never throws: a connection or protocol failure, or a timeout,
//   gives Outcome::NoAnswer with `why` set.
// - Nothing here logs.
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace unit::toolkit {

struct MilterMessage {
    std::string client_name = "client.example.net";
    std::string client_addr = "192.0.2.25";
    std::string helo = "client.example.net";
    std::string sender = "<sender@example.net>";
    std::vector<std::string> recipients;  // "<user@example.com>"
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body = "Hello.\r\n";
    std::string queue_id = "4BENCH";  // the i macro
};

enum class MilterOutcome { Continue, Tempfail, Reject, NoAnswer };

struct MilterResult {
    MilterOutcome outcome = MilterOutcome::NoAnswer;
    unsigned modifications = 0;  // header and recipient changes before the final reply
    std::string why;             // NoAnswer: what went wrong
};

class MilterClient {
public:
    MilterClient(std::string socket_path, std::chrono::milliseconds timeout);
    MilterResult transaction(const MilterMessage& message);

private:
    std::string path_;
    std::chrono::milliseconds timeout_;
};

const char* milter_outcome_name(MilterOutcome outcome);

}  // namespace unit::toolkit
