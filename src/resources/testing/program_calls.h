#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "base/process.h"
#include "cluster/group_controller.h"
#include "resources/resource.h"

namespace clusweb::resources::testing {

inline std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The fixture of the resource types that run programs (`script`, `ocf`): a real io_context
// with a ChildReaper, a temporary folder (dir_), and calls driven to their end on it. Children
// are real processes, so waits are bounded by `run_limit` rather than simulated.
class ProgramResourceTest : public ::testing::Test {
 protected:
  using Clock = std::chrono::steady_clock;

  ProgramResourceTest(std::string name, std::chrono::milliseconds run_limit)
      : name_(std::move(name)), run_limit_(run_limit) {}

  void SetUp() override {
    std::string pattern = std::filesystem::temp_directory_path() / (name_ + ".XXXXXX");
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Starts a call; the result appears in `out` once io_ has run it to the end.
  void start(Resource& resource, cluster::Verb verb, const CallContext& c,
             std::optional<CallResult>& out) {
    boost::asio::co_spawn(io_, resource.call(verb, c),
                          [&out](const std::exception_ptr& error, CallResult result) {
                            ASSERT_FALSE(error);
                            out = std::move(result);
                          });
  }

  // Runs io_ until `done` holds, at most `limit` (the fixture's run limit by default).
  template <class Done>
  bool run_until(Done done, std::optional<std::chrono::milliseconds> limit = std::nullopt) {
    auto deadline = Clock::now() + limit.value_or(run_limit_);
    io_.restart();
    while (!done() && Clock::now() < deadline) io_.run_one_for(std::chrono::milliseconds(10));
    return done();
  }

  CallResult call(Resource& resource, cluster::Verb verb, const CallContext& c) {
    std::optional<CallResult> out;
    start(resource, verb, c, out);
    EXPECT_TRUE(run_until([&] { return out.has_value(); }));
    return out.value_or(CallResult{});
  }

  // The pid a program wrote to `path`, once it has.
  pid_t read_pid(const std::string& path) {
    EXPECT_TRUE(run_until([&] { return std::filesystem::exists(path); }));
    return std::atoi(read_file(path).c_str());
  }

  boost::asio::io_context io_;
  ChildReaper reaper_{io_};
  std::string dir_;
  std::vector<std::string> sink_lines_;

 private:
  std::string name_;
  std::chrono::milliseconds run_limit_;
};

}  // namespace clusweb::resources::testing
