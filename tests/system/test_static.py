"""Static files: default documents, MIME types, validators, ranges, HEAD, large files, no escape
from the site root, directory listing."""

import email.utils
import hashlib
import os
import time
import unittest

from harness import (RawConnection, ServiceTestCase, free_ports, http_request, raw_exchange,
                     wait_for, write_file)

INDEX = "<!DOCTYPE html><title>static</title><p>index of the static site</p>\n"
NOTES = "plain notes\n"
BIG_SIZE = 300 * 1024 + 7  # above the in-memory limit (64 KiB): the sendfile path


def big_content():
    # Position-dependent bytes, so a shifted or repeated piece is caught.
    return b"".join(hashlib.sha256(str(i).encode()).digest() for i in range(BIG_SIZE // 32 + 1))[
        :BIG_SIZE]


class StaticFilesTest(ServiceTestCase):
    @classmethod
    def configure(cls, web):
        cls.port, cls.browse_port = free_ports(2)
        cls.root = web.site_folder("static", {
            "index.html": INDEX,
            "style.css": "body { color: black }\n",
            "data.json": '{"a": 1}\n',
            "notes.txt": NOTES,
            "image.png": "\x89PNG fake\n",
            "module.wasm": "\0asm",
            "thing.foo": "foo\n",
            "blob.unknownext": "??\n",
            "sub/index.html": "<p>sub index</p>\n",
            "sub/page.html": "<p>sub page</p>\n",
            "second/default.htm": "<p>second default</p>\n",
            "plain/a.txt": "a\n",
            "plain/b.txt": "b\n",
            "changing.txt": "version one\n",
            "with space.txt": "spaced\n",
        })
        write_file(os.path.join(cls.root, "big.bin"), big_content())
        # Symlinks: one staying inside the root, two leading out of it.
        os.symlink("index.html", os.path.join(cls.root, "alias.html"))
        os.symlink("/etc", os.path.join(cls.root, "etc-link"))
        os.symlink("/etc/passwd", os.path.join(cls.root, "passwd-link"))
        os.symlink("../../..", os.path.join(cls.root, "up-link"))
        cls.browse_root = web.site_folder("browse", {
            "one.txt": "1\n",
            "two.html": "<p>2</p>\n",
            ".hidden": "secret\n",
            "folder/three.txt": "3\n",
            "a&b <x>.txt": "tricky\n",
        })
        web.write_manifest("web.yaml", f"""
            kind: Site
            name: static
            physicalPath: {cls.root}
            bindings: [http://127.0.0.1:{cls.port}]
            defaultDocuments: [index.html, default.htm]
            mimeTypes:
              foo: application/x-foo
              txt: "text/x-custom-notes; charset=utf-8"
            ---
            kind: Site
            name: browse
            physicalPath: {cls.browse_root}
            bindings: [http://127.0.0.1:{cls.browse_port}]
            defaultDocuments: []
            directoryBrowsing: true
            """)

    def get(self, path, **kwargs):
        return http_request(self.port, path, **kwargs)

    # ---- default documents and directories ----

    def test_default_document_at_root(self):
        response, body = self.get("/")
        self.assertEqual(response.status, 200)
        self.assertEqual(body.decode(), INDEX)
        self.assertEqual(response.getheader("Content-Type"), "text/html; charset=utf-8")

    def test_default_document_in_folder_and_order(self):
        response, body = self.get("/sub/")
        self.assertEqual((response.status, body), (200, b"<p>sub index</p>\n"))
        # No index.html there: the second default document is used.
        response, body = self.get("/second/")
        self.assertEqual((response.status, body), (200, b"<p>second default</p>\n"))

    def test_folder_without_slash_redirects(self):
        response, _ = self.get("/sub?x=1")
        self.assertEqual(response.status, 301)
        self.assertEqual(response.getheader("Location"), "/sub/?x=1")

    def test_file_with_trailing_slash_is_not_found(self):
        response, _ = self.get("/notes.txt/")
        self.assertEqual(response.status, 404)

    def test_missing_file_is_404(self):
        response, _ = self.get("/no-such-file.html")
        self.assertEqual(response.status, 404)

    def test_listing_off_gives_403(self):
        response, body = self.get("/plain/")
        self.assertEqual(response.status, 403)
        self.assertNotIn(b"a.txt", body)

    def test_listing_on_gives_200_listing(self):
        response, body = http_request(self.browse_port, "/")
        self.assertEqual(response.status, 200)
        self.assertTrue(response.getheader("Content-Type").startswith("text/html"))
        text = body.decode()
        for name in ("one.txt", "two.html", "folder/"):
            self.assertIn(name, text)
        self.assertNotIn(".hidden", text)
        response, body = http_request(self.browse_port, "/folder/")
        self.assertEqual(response.status, 200)
        self.assertIn("three.txt", body.decode())
        # Listed files are served.
        response, body = http_request(self.browse_port, "/folder/three.txt")
        self.assertEqual((response.status, body), (200, b"3\n"))

    def test_listing_escapes_names(self):
        response, body = http_request(self.browse_port, "/")
        text = body.decode()
        self.assertIn("a&amp;b &lt;x&gt;.txt", text)
        self.assertNotIn("<x>", text)
        self.assertIn('href="a%26b%20%3Cx%3E.txt"', text)
        response, body = http_request(self.browse_port, "/a%26b%20%3Cx%3E.txt")
        self.assertEqual((response.status, body), (200, b"tricky\n"))

    def test_encoded_name_and_query(self):
        response, body = self.get("/with%20space.txt")
        self.assertEqual((response.status, body), (200, b"spaced\n"))
        response, body = self.get("/notes.txt?version=3")
        self.assertEqual((response.status, body.decode()), (200, NOTES))

    def test_redirect_is_never_protocol_relative(self):
        response = raw_exchange(self.port, b"GET //sub HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(response.status, 301)
        self.assertEqual(response.header("Location"), "/sub/")

    def test_pipelined_requests_answered_in_order(self):
        with RawConnection(self.port) as conn:
            conn.send(b"GET /notes.txt HTTP/1.1\r\nHost: x\r\n\r\n"
                      b"HEAD /index.html HTTP/1.1\r\nHost: x\r\n\r\n"
                      b"GET /sub/page.html HTTP/1.1\r\nHost: x\r\n\r\n")
            first = conn.read_response()
            second = conn.read_response(head_request=True)
            third = conn.read_response()
        self.assertEqual((first.status, first.text()), (200, NOTES))
        self.assertEqual((second.status, second.body), (200, b""))
        self.assertEqual((third.status, third.text()), (200, "<p>sub page</p>\n"))

    def test_symlink_inside_root_is_served(self):
        response, body = self.get("/alias.html")
        self.assertEqual((response.status, body.decode()), (200, INDEX))

    def test_other_methods_are_refused(self):
        response, _ = self.get("/notes.txt", method="POST", body=b"x")
        self.assertEqual(response.status, 405)
        self.assertIn("GET", response.getheader("Allow"))

    def test_http10_request(self):
        response = raw_exchange(self.port, b"GET /notes.txt HTTP/1.0\r\n\r\n")
        self.assertEqual(response.status, 200)
        self.assertEqual(response.body.decode(), NOTES)

    # ---- MIME types ----

    def test_mime_types(self):
        expected = {
            "/index.html": "text/html; charset=utf-8",
            "/style.css": "text/css; charset=utf-8",
            "/data.json": "application/json",
            "/image.png": "image/png",
            "/module.wasm": "application/wasm",
            "/blob.unknownext": "application/octet-stream",
        }
        for path, content_type in expected.items():
            with self.subTest(path=path):
                response, _ = self.get(path)
                self.assertEqual(response.status, 200)
                self.assertEqual(response.getheader("Content-Type"), content_type)

    def test_mime_type_overrides(self):
        response, _ = self.get("/thing.foo")
        self.assertEqual(response.getheader("Content-Type"), "application/x-foo")
        # "txt" is known to the server; the site's mimeTypes replaces it.
        response, body = self.get("/notes.txt")
        self.assertEqual(response.getheader("Content-Type"), "text/x-custom-notes; charset=utf-8")
        self.assertEqual(body.decode(), NOTES)

    # ---- validators ----

    def test_etag_and_if_none_match(self):
        response, _ = self.get("/notes.txt")
        etag = response.getheader("ETag")
        self.assertTrue(etag and etag.startswith('"'), etag)
        response, body = self.get("/notes.txt", headers={"If-None-Match": etag})
        self.assertEqual(response.status, 304)
        self.assertEqual(body, b"")
        self.assertEqual(response.getheader("ETag"), etag)
        response, _ = self.get("/notes.txt", headers={"If-None-Match": '"other", ' + etag})
        self.assertEqual(response.status, 304)
        response, body = self.get("/notes.txt", headers={"If-None-Match": '"something-else"'})
        self.assertEqual((response.status, body.decode()), (200, NOTES))

    def test_last_modified_and_if_modified_since(self):
        response, _ = self.get("/notes.txt")
        last_modified = response.getheader("Last-Modified")
        mtime = os.stat(os.path.join(self.root, "notes.txt")).st_mtime
        self.assertEqual(last_modified, email.utils.formatdate(int(mtime), usegmt=True))
        response, body = self.get("/notes.txt", headers={"If-Modified-Since": last_modified})
        self.assertEqual((response.status, body), (304, b""))
        earlier = email.utils.formatdate(int(mtime) - 3600, usegmt=True)
        response, _ = self.get("/notes.txt", headers={"If-Modified-Since": earlier})
        self.assertEqual(response.status, 200)

    def test_changed_file_gets_new_etag(self):
        path = os.path.join(self.root, "changing.txt")
        response, _ = self.get("/changing.txt")
        old_etag = response.getheader("ETag")
        write_file(path, "version two, longer\n")
        later = time.time() + 10
        os.utime(path, (later, later))

        def fresh():
            response, body = self.get("/changing.txt", headers={"If-None-Match": old_etag})
            return response.status == 200 and body == b"version two, longer\n" and \
                response.getheader("ETag") != old_etag
        wait_for(fresh, message="the changed file to be served with a new ETag")

    # ---- ranges ----

    def test_range_206(self):
        response, body = self.get("/notes.txt", headers={"Range": "bytes=0-4"})
        self.assertEqual(response.status, 206)
        self.assertEqual(body, NOTES.encode()[0:5])
        self.assertEqual(response.getheader("Content-Range"), "bytes 0-4/%d" % len(NOTES))
        response, body = self.get("/notes.txt", headers={"Range": "bytes=-3"})
        self.assertEqual((response.status, body), (206, NOTES.encode()[-3:]))
        response, body = self.get("/notes.txt", headers={"Range": "bytes=6-"})
        self.assertEqual((response.status, body), (206, NOTES.encode()[6:]))

    def test_range_416(self):
        response, _ = self.get("/notes.txt", headers={"Range": "bytes=5000-6000"})
        self.assertEqual(response.status, 416)
        self.assertEqual(response.getheader("Content-Range"), "bytes */%d" % len(NOTES))

    def test_if_range_with_old_etag_gives_whole_file(self):
        response, body = self.get("/notes.txt", headers={"Range": "bytes=0-4",
                                                         "If-Range": '"stale-etag"'})
        self.assertEqual((response.status, body.decode()), (200, NOTES))

    # ---- HEAD ----

    def test_head_has_headers_and_no_body(self):
        get, body = self.get("/index.html")
        with RawConnection(self.port) as conn:
            head = conn.exchange("HEAD", "/index.html")
            self.assertEqual(head.status, 200)
            self.assertEqual(head.body, b"")
            self.assertEqual(head.header("Content-Length"), str(len(body)))
            self.assertEqual(head.header("ETag"), get.getheader("ETag"))
            self.assertEqual(head.header("Content-Type"), get.getheader("Content-Type"))
            # Nothing followed the head: the next response on the connection parses cleanly.
            follow = conn.exchange("GET", "/notes.txt")
            self.assertEqual((follow.status, follow.text()), (200, NOTES))
            head = conn.exchange("HEAD", "/big.bin")
            self.assertEqual(head.header("Content-Length"), str(BIG_SIZE))
            follow = conn.exchange("GET", "/notes.txt")
            self.assertEqual((follow.status, follow.text()), (200, NOTES))

    # ---- large files (sendfile) ----

    def test_large_file_intact(self):
        expected = big_content()
        response, body = self.get("/big.bin")
        self.assertEqual(response.status, 200)
        self.assertEqual(int(response.getheader("Content-Length")), BIG_SIZE)
        self.assertEqual(hashlib.sha256(body).hexdigest(), hashlib.sha256(expected).hexdigest())

    def test_large_file_range(self):
        expected = big_content()
        response, body = self.get("/big.bin", headers={"Range": "bytes=100000-250000"})
        self.assertEqual(response.status, 206)
        self.assertEqual(response.getheader("Content-Range"), "bytes 100000-250000/%d" % BIG_SIZE)
        self.assertEqual(body, expected[100000:250001])
        response, body = self.get("/big.bin", headers={"Range": "bytes=-70000"})
        self.assertEqual((response.status, body), (206, expected[-70000:]))

    def test_large_file_twice_on_one_connection(self):
        expected = big_content()
        with RawConnection(self.port) as conn:
            for _ in range(2):
                response = conn.exchange("GET", "/big.bin")
                self.assertEqual(response.status, 200)
                self.assertEqual(response.body, expected)

    # ---- no escape from the root ----

    def assertRefused(self, target):
        response = raw_exchange(
            self.port, ("GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
                        % target).encode("latin-1"))
        self.assertIn(response.status, (400, 403, 404), "%s answered %r" % (target, response))
        self.assertNotIn(b"root:", response.body)
        return response

    def test_traversal_raw_dot_dot(self):
        self.assertRefused("/../etc/passwd")
        self.assertRefused("/../../../../../../etc/passwd")
        self.assertRefused("/sub/../../etc/passwd")

    def test_traversal_encoded_dots(self):
        self.assertRefused("/%2e%2e/")
        self.assertRefused("/%2e%2e/etc/passwd")
        self.assertRefused("/a/%2E%2E/%2e%2e/etc/passwd")
        self.assertRefused("/.%2e/.%2e/etc/passwd")

    def test_traversal_encoded_slash(self):
        self.assertRefused("/..%2fetc%2fpasswd")
        self.assertRefused("/..%2f..%2f..%2fetc/passwd")
        self.assertRefused("/sub/..%2F..%2Fetc/passwd")

    def test_traversal_backslash(self):
        self.assertRefused("/..\\..\\etc\\passwd")
        self.assertRefused("/%5c..%5c..%5cetc%5cpasswd")

    def test_nul_byte(self):
        self.assertRefused("/index.html%00.txt")
        self.assertRefused("/%00")

    def test_malformed_escape_is_400(self):
        self.assertEqual(self.assertRefused("/index%zz.html").status, 400)
        self.assertEqual(self.assertRefused("/index%2").status, 400)

    def test_symlinks_out_of_root(self):
        self.assertRefused("/etc-link/passwd")
        self.assertRefused("/etc-link/")
        self.assertRefused("/passwd-link")
        self.assertRefused("/up-link/etc/passwd")

    def test_absolute_form_target(self):
        self.assertRefused("http://localhost/../etc/passwd")
        response = raw_exchange(
            self.port, b"GET http://localhost/notes.txt HTTP/1.1\r\nHost: localhost\r\n\r\n")
        self.assertEqual((response.status, response.text()), (200, NOTES))


if __name__ == "__main__":
    unittest.main()
