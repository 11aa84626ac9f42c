//! The page's static files: a URL path becomes a file inside the page folder, or nothing.
//! Nothing outside the folder can be named: dot segments (`..`, `.`, and hidden names), empty
//! segments, backslashes, colons and NUL are refused before the file system is asked, and the
//! resolved file (symbolic links followed) must still lie under the folder.

use std::path::{Path, PathBuf};

/// Decodes `%XX` escapes; `None` for a broken escape or text that is not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The file under `root` (already canonical) that the URL path `url` names: `/` is
/// `index.html`; a query string is ignored. `None` when the path is refused or names no file.
pub fn resolve(root: &Path, url: &str) -> Option<PathBuf> {
    let path = url.split(['?', '#']).next().unwrap_or("");
    let decoded = percent_decode(path)?;
    let rel = decoded.strip_prefix('/')?;
    let rel = if rel.is_empty() { "index.html" } else { rel };
    let safe = |seg: &str| !seg.is_empty() && !seg.starts_with('.') && !seg.contains(['\\', ':', '\0']);
    if !rel.split('/').all(safe) {
        return None;
    }
    let file = root.join(rel).canonicalize().ok()?;
    (file.starts_with(root) && file.is_file()).then_some(file)
}

/// The media type of a file, by its extension.
pub fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "png" => "image/png",
        "svg" => "image/svg+xml",
        "ico" => "image/x-icon",
        "txt" | "md" | "LICENSE" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_that_leave_the_folder_or_hide_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("web");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("index.html"), "page").unwrap();
        std::fs::write(root.join("sub/a b.js"), "js").unwrap();
        std::fs::write(root.join(".secret"), "no").unwrap();
        std::fs::write(dir.path().join("outside.txt"), "no").unwrap();
        let root = root.canonicalize().unwrap();
        assert_eq!(resolve(&root, "/"), Some(root.join("index.html")));
        assert_eq!(resolve(&root, "/?x=1"), Some(root.join("index.html")));
        assert_eq!(resolve(&root, "/sub/a%20b.js"), Some(root.join("sub/a b.js")));
        for bad in [
            "/../outside.txt",
            "/%2e%2e/outside.txt",
            "/sub/%2E%2E/%2E%2E/outside.txt",
            "/..%2foutside.txt",
            "/sub/..%5c..%5coutside.txt",
            "//etc/passwd",
            "/.secret",
            "/sub/./a%20b.js",
            "/sub",
            "/%zz",
            "/%ff",
            "/a%00",
            "outside.txt",
            "/C:/x",
        ] {
            assert_eq!(resolve(&root, bad), None, "{bad}");
        }
        // A link inside the folder that points out of it is refused too.
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(dir.path().join("outside.txt"), root.join("link.txt")).unwrap();
            assert_eq!(resolve(&root, "/link.txt"), None);
        }
    }
}
