vcl 4.1;
# Varnish in front of one test site, set up as WordPress hosts usually set it up: anonymous
# pages are cached, admin and logged-in traffic passes, and purges come from loopback only.

backend default {
    .host = "127.0.0.1";
    .port = "{{BACKEND_PORT}}";
    .connect_timeout = 5s;
    .first_byte_timeout = 120s;
}

acl purgers {
    "127.0.0.1";
    "::1";
}

sub vcl_recv {
    if (req.method == "PURGE" || req.method == "BAN") {
        if (client.ip !~ purgers) {
            return (synth(405, "Purging not allowed from " + client.ip));
        }
        if (req.method == "BAN") {
            if (req.http.X-Ban-Url) {
                ban("req.url ~ " + req.http.X-Ban-Url);
            } else {
                ban("req.url ~ " + req.url);
            }
            return (synth(200, "Banned"));
        }
        # The Proxy Cache Purge plugin's convention: PURGE /path-regex with X-Purge-Method: regex.
        if (req.http.X-Purge-Method ~ "(?i)regex") {
            ban("req.url ~ " + req.url);
            return (synth(200, "Banned"));
        }
        return (purge);
    }
    if (req.method != "GET" && req.method != "HEAD") {
        return (pass);
    }
    if (req.url ~ "^/wp-(admin|login|cron)" || req.url ~ "preview=true") {
        return (pass);
    }
    if (req.http.Cookie ~ "wordpress_logged_in_|wordpress_sec_|wp-postpass_|comment_author_") {
        return (pass);
    }
    unset req.http.Cookie;
    return (hash);
}

sub vcl_backend_response {
    if (bereq.url !~ "^/wp-(admin|login|cron)" && !bereq.http.Cookie
            && beresp.status < 500 && beresp.http.Cache-Control !~ "(?i)private|no-store") {
        unset beresp.http.Set-Cookie;
        set beresp.ttl = 1h;
        set beresp.grace = 0s;
    }
}

sub vcl_deliver {
    if (obj.hits > 0) {
        set resp.http.X-Cache = "HIT";
    } else {
        set resp.http.X-Cache = "MISS";
    }
}

sub vcl_synth {
    if (req.method == "PURGE" || req.method == "BAN") {
        set resp.http.Content-Type = "text/plain; charset=utf-8";
        set resp.body = resp.reason;
        return (deliver);
    }
}
