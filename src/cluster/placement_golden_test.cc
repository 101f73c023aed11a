// Golden-file tests of place(): every testdata/placement/NAME.yaml is one scenario, and
// NAME.golden holds its decisions, one per line in input order:
//
//   group -> node  # reason
//   group -> (nowhere)  # reason
//
// Run with CLUSWEB_UPDATE_GOLDEN=1 to rewrite the .golden files from the current code (then read
// the diff: every line must follow the rules in placement.h).
//
// Scenario format (unknown keys are errors, so a typo cannot silently change a scenario):
//
//   now: 2026-01-01T12:00:00Z          # ISO 8601 UTC, or seconds since the epoch
//   nodes:
//     - {name: n1}                     # up: true and paused: false unless given
//     - {name: n2, up: false}
//     - {name: n3, paused: true}
//     - {name: n4, paused: true, draining: true}
//   groups:                            # decided in this order
//     - name: web
//       preferredOwners: [n1, n2]
//       failoverThreshold: 2           # unset = number of nodes - 1, at least 1
//       failoverPeriod: 6h             # durations: 1h30m, 90s, 250ms (defaults from model.h)
//       retryPeriodOnFailure: 1h
//       failback: allow                # or prevent (the default)
//       failbackWindow: [22, 6]        # UTC hours, both included
//       antiAffinityClasses: [db]
//       resources:
//         - {name: ip, type: ip, possibleOwners: [n1, n2]}
//         - {name: site, type: website, dependsOn: [ip, [db, cache]]}  # AND of ORs
//       owner: n1                      # holder of owners/<group>, with its token
//       ownerToken: 10
//       placement: n1                  # current placement/<group>
//       offline: true                  # `group offline`
//       failovers:                     # `at`: ISO time, or relative to now: -2h, -1h30m
//         - {from: n2, at: -2h}
//         - {from: n3, at: -3d, class: hard}    # soft (default), hard or fatal
//       move: {to: n3, revision: 20}   # `to` omitted or "" = the best other node
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "base/duration.h"
#include "base/result.h"
#include "cluster/placement.h"

namespace clusweb::cluster {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

fs::path scenario_dir() { return fs::path(CLUSWEB_CLUSTER_TESTDATA) / "placement"; }

struct Scenario {
  std::vector<NodeState> nodes;
  std::vector<GroupState> groups;
  WallTime now;
};

// Thrown only inside load_scenario(), which turns it (and yaml-cpp's own exceptions) into an
// Error; the parser below then reads straight through without checking at every step.
struct BadScenario {
  std::string message;
};

std::string where(const YAML::Node& node) { return fmt::format("line {}", node.Mark().line + 1); }

void expect_keys(const YAML::Node& map, std::initializer_list<std::string_view> keys) {
  if (!map.IsMap()) throw BadScenario{fmt::format("{}: expected a mapping", where(map))};
  for (const auto& entry : map) {
    const auto key = entry.first.as<std::string>();
    if (std::find(keys.begin(), keys.end(), key) == keys.end()) {
      throw BadScenario{fmt::format("{}: unknown key \"{}\"", where(entry.first), key)};
    }
  }
}

std::vector<std::string> string_list(const YAML::Node& node) {
  if (!node.IsSequence()) throw BadScenario{fmt::format("{}: expected a list", where(node))};
  std::vector<std::string> values;
  for (const auto& item : node) values.push_back(item.as<std::string>());
  return values;
}

// "1h30m", "90s", "250ms"; signed ("-2h") for a time relative to now.
milliseconds parse_duration(const YAML::Node& node) {
  const auto text = node.as<std::string>();
  std::string_view rest = text;
  const bool negative = rest.starts_with('-');
  if (negative || rest.starts_with('+')) rest.remove_prefix(1);
  Result<milliseconds> duration = clusweb::parse_duration(rest);
  if (!duration) {
    throw BadScenario{fmt::format("{}: {}", where(node), duration.error().describe())};
  }
  return negative ? -*duration : *duration;
}

// "2026-01-01T12:00:00Z", or seconds since the epoch.
WallTime parse_absolute_time(const YAML::Node& node) {
  const auto text = node.as<std::string>();
  int year = 0;
  unsigned month = 0;
  unsigned day = 0;
  int hour = 0;
  int minute = 0;
  int second = 0;
  char zone = 0;
  int consumed = 0;
  if (std::sscanf(text.c_str(), "%4d-%2u-%2uT%2d:%2d:%2d%c%n", &year, &month, &day, &hour, &minute,
                  &second, &zone, &consumed) == 7 &&
      zone == 'Z' && static_cast<size_t>(consumed) == text.size()) {
    const std::chrono::year_month_day date{std::chrono::year{year}, std::chrono::month{month},
                                           std::chrono::day{day}};
    if (date.ok()) {
      return std::chrono::sys_days{date} + std::chrono::hours(hour) + std::chrono::minutes(minute) +
             std::chrono::seconds(second);
    }
  }
  int64_t seconds = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), seconds);
  if (error == std::errc() && end == text.data() + text.size()) {
    return WallTime(std::chrono::seconds(seconds));
  }
  throw BadScenario{
      fmt::format("{}: bad time \"{}\" (expected e.g. 2026-01-01T12:00:00Z)", where(node), text)};
}

WallTime parse_time(const YAML::Node& node, WallTime now) {
  const auto text = node.as<std::string>();
  if (text.starts_with('-') || text.starts_with('+')) {
    return now + parse_duration(node);
  }
  return parse_absolute_time(node);
}

ResourceSpec parse_resource(const YAML::Node& node) {
  expect_keys(node, {"name", "type", "possibleOwners", "dependsOn"});
  ResourceSpec resource;
  resource.name = node["name"].as<std::string>();
  resource.type = node["type"] ? node["type"].as<std::string>() : "script";
  if (node["possibleOwners"]) resource.possible_owners = string_list(node["possibleOwners"]);
  if (node["dependsOn"]) {
    for (const auto& any_of : node["dependsOn"]) {
      resource.depends_on.push_back(any_of.IsSequence()
                                        ? string_list(any_of)
                                        : std::vector<std::string>{any_of.as<std::string>()});
    }
  }
  return resource;
}

GroupState parse_group(const YAML::Node& node, WallTime now) {
  expect_keys(node, {"name", "preferredOwners", "failoverThreshold", "failoverPeriod",
                     "retryPeriodOnFailure", "failback", "failbackWindow", "antiAffinityClasses",
                     "resources", "owner", "ownerToken", "placement", "offline", "failovers",
                     "move", "unmanaged"});
  GroupState group;
  GroupSpec& spec = group.spec;
  spec.name = node["name"].as<std::string>();
  if (node["preferredOwners"]) spec.preferred_owners = string_list(node["preferredOwners"]);
  if (node["failoverThreshold"]) spec.failover_threshold = node["failoverThreshold"].as<int>();
  if (node["failoverPeriod"]) spec.failover_period = parse_duration(node["failoverPeriod"]);
  if (node["retryPeriodOnFailure"]) {
    spec.retry_period_on_failure = parse_duration(node["retryPeriodOnFailure"]);
  }
  if (node["failbackWindow"]) {
    const auto hours = node["failbackWindow"].as<std::vector<int>>();
    if (hours.size() != 2) {
      throw BadScenario{fmt::format("{}: failbackWindow is [start, end]", where(node))};
    }
    spec.failback_window = FailbackWindow{hours[0], hours[1]};
  }
  if (node["antiAffinityClasses"]) {
    spec.anti_affinity_classes = string_list(node["antiAffinityClasses"]);
  }
  if (node["failback"]) {
    const auto failback = node["failback"].as<std::string>();
    if (failback != "allow" && failback != "prevent") {
      throw BadScenario{fmt::format("{}: failback must be allow or prevent", where(node))};
    }
    spec.failback = failback == "allow" ? FailbackPolicy::kAllow : FailbackPolicy::kPrevent;
  }
  if (node["resources"]) {
    for (const auto& resource : node["resources"])
      spec.resources.push_back(parse_resource(resource));
  }
  if (Status valid = validate(spec); !valid) {
    throw BadScenario{fmt::format("{}: {}", where(node), valid.error().describe())};
  }
  if (node["owner"]) group.owner = node["owner"].as<std::string>();
  if (node["ownerToken"]) group.owner_token = node["ownerToken"].as<int64_t>();
  if (node["placement"]) group.placement = node["placement"].as<std::string>();
  if (node["offline"]) group.offline_requested = node["offline"].as<bool>();
  if (node["unmanaged"]) group.unmanaged = node["unmanaged"].as<bool>();
  if (node["failovers"]) {
    for (const auto& failover : node["failovers"]) {
      expect_keys(failover, {"from", "at", "class"});
      FailoverRecord record{failover["from"].as<std::string>(), parse_time(failover["at"], now)};
      const std::string failure = failover["class"] ? failover["class"].as<std::string>() : "soft";
      if (failure == "hard") {
        record.failure = FailureClass::kHard;
      } else if (failure == "fatal") {
        record.failure = FailureClass::kFatal;
      } else if (failure != "soft") {
        throw BadScenario{fmt::format("{}: class must be soft, hard or fatal", where(failover))};
      }
      group.failovers.push_back(std::move(record));
    }
  }
  if (const YAML::Node move = node["move"]) {
    expect_keys(move, {"to", "revision"});
    group.move =
        MoveRequest{move["to"] ? move["to"].as<std::string>() : "", move["revision"].as<int64_t>()};
  }
  return group;
}

Result<Scenario> load_scenario(const fs::path& path) {
  try {
    const YAML::Node root = YAML::LoadFile(path.string());
    expect_keys(root, {"now", "nodes", "groups"});
    if (!root["now"]) return make_error("{}: needs \"now\"", path.string());
    Scenario scenario;
    scenario.now = parse_absolute_time(root["now"]);
    for (const auto& node : root["nodes"]) {
      expect_keys(node, {"name", "up", "paused", "draining"});
      scenario.nodes.push_back(NodeState{node["name"].as<std::string>(),
                                         node["up"] ? node["up"].as<bool>() : true,
                                         node["paused"] ? node["paused"].as<bool>() : false,
                                         node["draining"] ? node["draining"].as<bool>() : false});
    }
    for (const auto& group : root["groups"]) {
      scenario.groups.push_back(parse_group(group, scenario.now));
    }
    return scenario;
  } catch (const BadScenario& bad) {
    return make_error("{}: {}", path.string(), bad.message);
  } catch (const YAML::Exception& error) {
    return make_error("{}: {}", path.string(), error.what());
  }
}

std::vector<std::string> render(const std::vector<PlacementDecision>& decisions) {
  std::vector<std::string> lines;
  lines.reserve(decisions.size());
  for (const PlacementDecision& decision : decisions) {
    lines.push_back(fmt::format("{} -> {}  # {}", decision.group,
                                decision.node.value_or("(nowhere)"), decision.reason));
  }
  return lines;
}

std::vector<std::string> read_lines(const fs::path& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// A line diff over the longest common subsequence; scenarios are small enough for the
// quadratic table.
std::string diff(const std::vector<std::string>& expected, const std::vector<std::string>& actual) {
  const size_t n = expected.size();
  const size_t m = actual.size();
  std::vector<std::vector<size_t>> common(n + 1, std::vector<size_t>(m + 1, 0));
  for (size_t i = n; i-- > 0;) {
    for (size_t j = m; j-- > 0;) {
      common[i][j] = expected[i] == actual[j] ? common[i + 1][j + 1] + 1
                                              : std::max(common[i + 1][j], common[i][j + 1]);
    }
  }
  std::string out = "--- expected (.golden)\n+++ actual\n";
  size_t i = 0;
  size_t j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && expected[i] == actual[j]) {
      out += "  " + expected[i++] + "\n";
      ++j;
    } else if (i < n && (j == m || common[i + 1][j] >= common[i][j + 1])) {
      out += "- " + expected[i++] + "\n";
    } else {
      out += "+ " + actual[j++] + "\n";
    }
  }
  return out;
}

bool updating_golden_files() {
  const char* update = std::getenv("CLUSWEB_UPDATE_GOLDEN");
  return update != nullptr && std::string_view(update) == "1";
}

std::vector<std::string> scenario_names() {
  std::vector<std::string> names;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(scenario_dir(), error)) {
    if (entry.path().extension() == ".yaml") names.push_back(entry.path().stem().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

class PlacementGoldenTest : public ::testing::TestWithParam<std::string> {};

TEST_P(PlacementGoldenTest, MatchesGoldenFile) {
  const fs::path input = scenario_dir() / (GetParam() + ".yaml");
  const fs::path golden = scenario_dir() / (GetParam() + ".golden");
  auto scenario = load_scenario(input);
  ASSERT_TRUE(scenario.ok()) << scenario.error().describe();

  const auto actual = render(place(scenario->nodes, scenario->groups, scenario->now));
  // Run twice: the golden file would hide nondeterminism that happens to repeat.
  EXPECT_EQ(render(place(scenario->nodes, scenario->groups, scenario->now)), actual);

  if (updating_golden_files()) {
    std::ofstream out(golden, std::ios::trunc);
    for (const std::string& line : actual) out << line << "\n";
    out.close();
    ASSERT_TRUE(out) << "cannot write " << golden;
    return;
  }
  ASSERT_TRUE(fs::exists(golden)) << golden << " is missing; run with CLUSWEB_UPDATE_GOLDEN=1";
  const auto expected = read_lines(golden);
  EXPECT_TRUE(expected == actual) << golden << " differs:\n"
                                  << diff(expected, actual)
                                  << "(CLUSWEB_UPDATE_GOLDEN=1 rewrites it)";
}

std::string test_name(const ::testing::TestParamInfo<std::string>& info) {
  std::string name = info.param;
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return name;
}

INSTANTIATE_TEST_SUITE_P(Placement, PlacementGoldenTest, ::testing::ValuesIn(scenario_names()),
                         test_name);

// A wrong directory would otherwise instantiate no test at all and pass.
TEST(PlacementGoldenFilesTest, ScenariosArePresent) {
  EXPECT_GE(scenario_names().size(), 10U) << "in " << scenario_dir();
}

// A typo in a scenario must fail its test rather than quietly drop a setting.
TEST(PlacementGoldenFilesTest, UnknownKeysAndBadValuesAreErrors) {
  const fs::path path = fs::path(::testing::TempDir()) / "placement_bad_scenario.yaml";
  auto load = [&](std::string_view text) {
    std::ofstream(path, std::ios::trunc) << text;
    return load_scenario(path);
  };
  auto typo = load("now: 2026-01-01T12:00:00Z\ngroups:\n  - {name: a, prefferedOwners: [n1]}\n");
  ASSERT_FALSE(typo.ok());
  EXPECT_NE(typo.error().message.find("unknown key \"prefferedOwners\""), std::string::npos);
  EXPECT_FALSE(load("now: yesterday\n").ok());
  EXPECT_FALSE(load("now: 0\ngroups:\n  - {name: a, failoverPeriod: 6x}\n").ok());
  auto relative = load(
      "now: 2026-01-01T12:00:00Z\ngroups:\n  - name: a\n    failovers: [{from: n1, at: -1h30m}]\n");
  ASSERT_TRUE(relative.ok()) << relative.error().describe();
  EXPECT_EQ(relative->groups[0].failovers[0].at, relative->now - std::chrono::minutes(90));
  fs::remove(path);
}

// The diff is what a reader sees on failure, so it has to point at the right lines.
TEST(PlacementGoldenFilesTest, DiffMarksChangedLines) {
  EXPECT_EQ(diff({"a", "b", "c"}, {"a", "x", "c", "d"}),
            "--- expected (.golden)\n+++ actual\n  a\n- b\n+ x\n  c\n+ d\n");
}

}  // namespace
}  // namespace clusweb::cluster
