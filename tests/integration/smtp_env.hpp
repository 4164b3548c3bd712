#pragma once
// The SMTP side of integration tests: the shared server scripts/smtp runs (its port and mail
// dir come from scripts/test), and private servers a test starts and stops itself to play
// an outage.

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "test_env.hpp"

namespace taskstream::itest {

inline std::string shared_smtp_maildir() {
  const char* d = std::getenv("TASKSTREAM_SMTP_MAILDIR");
  return d && *d ? d : TASKSTREAM_SOURCE_DIR "/var/smtp/mail";
}

inline std::string shared_smtp_port() {
  const char* port = std::getenv("SMTP_TEST_PORT");
  return port && *port ? port : "2525";
}

/// Messages in `dir` that contain `needle`.
inline std::vector<std::string> mails_with(const std::string& needle, const std::string& dir = shared_smtp_maildir()) {
  std::vector<std::string> out;
  if (!std::filesystem::exists(dir)) return out;
  for (const auto& f : std::filesystem::directory_iterator(dir)) {
    if (f.path().extension() != ".eml") continue;
    std::ifstream in(f.path());
    std::string text((std::istreambuf_iterator<char>(in)), {});
    if (text.find(needle) != std::string::npos) out.push_back(text);
  }
  return out;
}

/// A private SMTP server (scripts/smtp_server.py, the one scripts/smtp runs) on 127.0.0.1:port
/// keeping mail in its own dir; stopped by the destructor.
class PrivateSmtpServer final {
 public:
  PrivateSmtpServer(std::uint16_t port, std::string mail_dir)
      : mail_dir_(make_dir(std::move(mail_dir))),
        child_({"/usr/bin/python3", TASKSTREAM_SOURCE_DIR "/scripts/smtp_server.py", "--port", std::to_string(port), "--mail-dir", mail_dir_}) {}
  const std::string& mail_dir() const { return mail_dir_; }

 private:
  static std::string make_dir(std::string dir) {
    std::filesystem::create_directories(dir);
    return dir;
  }
  std::string mail_dir_;
  ChildProcess child_;
};

}  // namespace taskstream::itest
