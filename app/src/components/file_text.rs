//! Reading a file the person picked into the page, in the browser: the Settings key field
//! and the assignment wizard's CSV field read text files this way (the file itself is never
//! uploaded; its text goes into a text area that the form posts).

use leptos::prelude::*;

/// Reads the file chosen in the `<input type="file">` of `ev` as text, at most `max_bytes`,
/// and calls `done` with `(file name, text)`, or with a sentence saying why it could not.
/// Does nothing on the server.
pub fn read_chosen_file(
    ev: leptos::ev::Event,
    max_bytes: f64,
    done: impl FnOnce(Result<(String, String), String>) + 'static,
) {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::JsCast as _;
        use wasm_bindgen::closure::Closure;

        let Some(file) = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok())
            .and_then(|input| input.files())
            .and_then(|files| files.get(0))
        else {
            return;
        };
        let name = file.name();
        if file.size() > max_bytes {
            done(Err(format!(
                "{name} is too large ({:.0} KB at most).",
                max_bytes / 1024.0
            )));
            return;
        }
        let Ok(reader) = web_sys::FileReader::new() else {
            done(Err(format!("Could not read {name}.")));
            return;
        };
        let finished = reader.clone();
        let done = std::cell::Cell::new(Some(done));
        let onload = Closure::once_into_js(move || {
            let text = finished.result().ok().and_then(|v| v.as_string());
            if let Some(done) = done.take() {
                done(
                    text.map(|t| (name.clone(), t))
                        .ok_or_else(|| format!("Could not read {name}.")),
                );
            }
        });
        reader.set_onload(Some(onload.unchecked_ref()));
        let _ = reader.read_as_text(&file);
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (ev, max_bytes, done);
}

/// Sets the text of a text area (browser only; on the server a no-op).
pub fn set_text(area: NodeRef<leptos::html::Textarea>, text: &str) {
    if let Some(area) = area.get_untracked() {
        area.set_value(text);
    }
}
