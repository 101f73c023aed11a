"""Routing: listener -> exact host -> wildcard host -> catch-all -> longest application prefix."""

import socket
import unittest

from harness import (ECHO_WORKER, ServiceTestCase, free_ports, http_request, raw_exchange)


def site_files(name):
    return {"index.html": "site=%s\n" % name, "apix": "static apix of %s\n" % name}


class RoutingTest(ServiceTestCase):
    @classmethod
    def configure(cls, web):
        cls.port, cls.other_port, cls.hosts_only_port, cls.star_port, cls.v6_port = free_ports(5)
        roots = {name: web.site_folder(name, site_files(name)) for name in (
            "exact", "wild", "deepwild", "catchall", "other", "only", "star", "v6")}
        worker = web.worker(ECHO_WORKER)
        p = cls.port
        web.write_manifest("sites.yaml", f"""
            kind: Site
            name: exact
            physicalPath: {roots["exact"]}
            bindings: [http://127.0.0.1:{p}/www.example.com]
            ---
            kind: Site
            name: wild
            physicalPath: {roots["wild"]}
            bindings: [http://127.0.0.1:{p}/*.example.com]
            ---
            kind: Site
            name: deepwild
            physicalPath: {roots["deepwild"]}
            bindings: [http://127.0.0.1:{p}/*.api.example.com]
            ---
            kind: Site
            name: catchall
            physicalPath: {roots["catchall"]}
            bindings: [http://127.0.0.1:{p}]
            applications:
              - {{path: /api, pool: api}}
              - {{path: /api/v2, pool: api-v2}}
              - {{path: /api/v2/admin/, pool: admin}}
            ---
            kind: Site
            name: other
            physicalPath: {roots["other"]}
            bindings: [http://127.0.0.1:{cls.other_port}]
            ---
            kind: Site
            name: only
            physicalPath: {roots["only"]}
            bindings: [http://127.0.0.1:{cls.hosts_only_port}/only.example.com]
            ---
            kind: Site
            name: star
            physicalPath: {roots["star"]}
            bindings: ["http://*:{cls.star_port}"]
            ---
            kind: Site
            name: v6
            physicalPath: {roots["v6"]}
            bindings: ["http://[::1]:{cls.v6_port}"]
            """)
        web.write_manifest("pools.yaml", f"""
            kind: ApplicationPool
            name: api
            command: [{worker}]
            ---
            kind: ApplicationPool
            name: api-v2
            command: [{worker}]
            ---
            kind: ApplicationPool
            name: admin
            command: [{worker}]
            """)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        for pool in ("api", "api-v2", "admin"):
            cls.web.wait_pool(pool)

    def site_for(self, host, port=None, path="/"):
        response, body = http_request(port or self.port, path, host=host)
        self.assertEqual(response.status, 200, "%s%s: %r" % (host, path, body))
        return body.decode().strip().removeprefix("site=")

    def test_exact_host(self):
        self.assertEqual(self.site_for("www.example.com"), "exact")

    def test_host_is_case_insensitive_and_port_and_trailing_dot_ignored(self):
        self.assertEqual(self.site_for("WWW.Example.COM"), "exact")
        self.assertEqual(self.site_for("www.example.com:%d" % self.port), "exact")
        self.assertEqual(self.site_for("www.example.com."), "exact")

    def test_wildcard_host(self):
        self.assertEqual(self.site_for("shop.example.com"), "wild")
        self.assertEqual(self.site_for("a.b.example.com"), "wild")

    def test_longest_wildcard_wins(self):
        self.assertEqual(self.site_for("v1.api.example.com"), "deepwild")

    def test_wildcard_does_not_match_bare_domain(self):
        self.assertEqual(self.site_for("example.com"), "catchall")

    def test_catch_all(self):
        self.assertEqual(self.site_for("unrelated.test"), "catchall")
        self.assertEqual(self.site_for("127.0.0.1:%d" % self.port), "catchall")

    def test_absolute_form_target_routes_by_its_authority(self):
        response = raw_exchange(self.port, b"GET http://www.example.com/ HTTP/1.1\r\n"
                                b"Host: unrelated.test\r\nConnection: close\r\n\r\n")
        self.assertEqual((response.status, response.text()), (200, "site=exact\n"))

    def test_unknown_host_without_catch_all_is_400(self):
        self.assertEqual(self.site_for("only.example.com", self.hosts_only_port), "only")
        response, _ = http_request(self.hosts_only_port, "/", host="nobody.example.com")
        self.assertEqual(response.status, 400)

    def test_missing_host_in_http11_is_400(self):
        response = raw_exchange(self.port, b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
        self.assertEqual(response.status, 400)

    def test_http10_without_host_goes_to_catch_all(self):
        response = raw_exchange(self.port, b"GET / HTTP/1.0\r\n\r\n")
        self.assertEqual((response.status, response.text()), (200, "site=catchall\n"))

    def test_listener_decides_first(self):
        # The same host name on another listener reaches that listener's site.
        self.assertEqual(self.site_for("www.example.com", self.other_port), "other")
        self.assertEqual(self.site_for("anything", self.other_port), "other")

    def test_star_address_reachable_on_loopback(self):
        self.assertEqual(self.site_for("x", self.star_port), "star")
        response, body = http_request(self.star_port, "/", host="x", address="::1")
        self.assertEqual((response.status, body), (200, b"site=star\n"))

    def test_ipv6_binding(self):
        response, body = http_request(self.v6_port, "/", host="x", address="::1")
        self.assertEqual((response.status, body), (200, b"site=v6\n"))
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", self.v6_port), timeout=2).close()

    def pool_for(self, path):
        response, body = http_request(self.port, path, host="unrelated.test")
        self.assertEqual(response.status, 200, "%s: %r" % (path, body))
        return body.decode().split("pool=")[1].strip()

    def test_longest_application_prefix(self):
        self.assertEqual(self.pool_for("/api"), "api")
        self.assertEqual(self.pool_for("/api/"), "api")
        self.assertEqual(self.pool_for("/api/x"), "api")
        self.assertEqual(self.pool_for("/api/v2"), "api-v2")
        self.assertEqual(self.pool_for("/api/v2/x?y=1"), "api-v2")
        self.assertEqual(self.pool_for("/api/v2/admin/users"), "admin")
        # Whole segments only: /api/v20 is under /api, not /api/v2.
        self.assertEqual(self.pool_for("/api/v20"), "api")
        self.assertEqual(self.pool_for("/api?x=1"), "api")

    def test_paths_outside_applications_are_static(self):
        response, body = http_request(self.port, "/apix", host="unrelated.test")
        self.assertEqual((response.status, body), (200, b"static apix of catchall\n"))
        response, body = http_request(self.port, "/", host="unrelated.test")
        self.assertEqual((response.status, body), (200, b"site=catchall\n"))

    def test_applications_belong_to_their_site(self):
        # /api is an application of the catch-all site only.
        response, _ = http_request(self.port, "/api/x", host="www.example.com")
        self.assertEqual(response.status, 404)


class StarAndSpecificAddressTest(ServiceTestCase):
    """`*` and a specific address on one port, in two sites: the specific address wins for
    connections to it (docs/configuration.md, Bindings)."""

    @classmethod
    def configure(cls, web):
        (cls.port,) = free_ports(1)
        star = web.site_folder("star", site_files("star"))
        loop = web.site_folder("loopback", site_files("loopback"))
        web.write_manifest("web.yaml", f"""
            kind: Site
            name: star
            physicalPath: {star}
            bindings: ["http://*:{cls.port}"]
            ---
            kind: Site
            name: loopback
            physicalPath: {loop}
            bindings: ["http://127.0.0.1:{cls.port}"]
            """)

    def test_specific_address_wins(self):
        response, body = http_request(self.port, "/", host="x")
        self.assertEqual((response.status, body), (200, b"site=loopback\n"))
        response, body = http_request(self.port, "/", host="x", address="::1")
        self.assertEqual((response.status, body), (200, b"site=star\n"))


if __name__ == "__main__":
    unittest.main()
