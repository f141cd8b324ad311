//! The page, built into the binary: plain HTML, JavaScript and CSS, with no build step
//! and nothing loaded from elsewhere.

/// A file of the page.
#[derive(Debug)]
pub struct File {
    /// Where it is served.
    pub path: &'static str,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its text.
    pub body: &'static str,
}

/// Every file of the page.
pub const FILES: [File; 8] = [
    File {
        path: "/",
        content_type: "text/html; charset=utf-8",
        body: include_str!("page/index.html"),
    },
    File {
        path: "/app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("page/app.js"),
    },
    File {
        path: "/style.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("page/style.css"),
    },
    File {
        path: "/charts.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("page/charts.js"),
    },
    File {
        path: "/nav.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("page/nav.js"),
    },
    File {
        path: "/train.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("page/train.js"),
    },
    File {
        path: "/equations.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("page/equations.js"),
    },
    File {
        path: "/runs.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("page/runs.js"),
    },
];
