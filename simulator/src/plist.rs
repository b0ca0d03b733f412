//! A small XML property-list checker for configuration profiles: well-formed
//! XML (matching tags, attributes quoted, entities known), a `<plist>` root
//! holding one `<dict>`, plist value grammar (dict = key/value pairs), and a
//! non-empty `PayloadContent` array of dicts. No DTD or schema processing.

/// Why a profile was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlistError {
    /// The text is not well-formed XML.
    #[error("profile is not well-formed XML: {0}")]
    Xml(String),
    /// The XML is not a property list of the expected structure.
    #[error("profile is not a valid configuration profile: {0}")]
    Structure(String),
}

#[derive(Debug)]
struct Node {
    name: String,
    children: Vec<Node>,
    text: String,
}

struct Parser<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn rest(&self) -> &'a str {
        &self.s[self.pos..]
    }
    fn err<T>(&self, what: &str) -> Result<T, PlistError> {
        Err(PlistError::Xml(format!("{what} at byte {}", self.pos)))
    }
    fn skip_ws(&mut self) {
        let trimmed = self.rest().trim_start();
        self.pos = self.s.len() - trimmed.len();
    }
    /// Skips prolog items: XML declaration, DOCTYPE, comments, processing instructions.
    fn skip_misc(&mut self) -> Result<(), PlistError> {
        loop {
            self.skip_ws();
            let r = self.rest();
            let end = if r.starts_with("<?") {
                r.find("?>").map(|i| i + 2)
            } else if r.starts_with("<!--") {
                r.find("-->").map(|i| i + 3)
            } else if r.starts_with("<!DOCTYPE") {
                r.find('>').map(|i| i + 1)
            } else {
                return Ok(());
            };
            match end {
                Some(e) => self.pos += e,
                None => return self.err("unterminated markup"),
            }
        }
    }
    fn name(&mut self) -> Result<String, PlistError> {
        let r = self.rest();
        let len = r
            .find(|c: char| !(c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ':')))
            .unwrap_or(r.len());
        if len == 0 {
            return self.err("expected a name");
        }
        self.pos += len;
        Ok(r[..len].to_string())
    }
    fn element(&mut self) -> Result<Node, PlistError> {
        if !self.rest().starts_with('<') {
            return self.err("expected '<'");
        }
        self.pos += 1;
        let name = self.name()?;
        loop {
            self.skip_ws();
            let r = self.rest();
            if let Some(after) = r.strip_prefix("/>") {
                self.pos = self.s.len() - after.len();
                return Ok(Node {
                    name,
                    children: vec![],
                    text: String::new(),
                });
            }
            if r.starts_with('>') {
                self.pos += 1;
                break;
            }
            self.name()?;
            self.skip_ws();
            if !self.rest().starts_with('=') {
                return self.err("expected '=' after attribute name");
            }
            self.pos += 1;
            self.skip_ws();
            let q = self.rest().chars().next();
            let Some(q @ ('"' | '\'')) = q else {
                return self.err("attribute value must be quoted");
            };
            self.pos += 1;
            match self.rest().find(q) {
                Some(i) => self.pos += i + 1,
                None => return self.err("unterminated attribute value"),
            }
        }
        let mut node = Node {
            name,
            children: vec![],
            text: String::new(),
        };
        loop {
            let r = self.rest();
            if r.is_empty() {
                return self.err(&format!("unclosed <{}>", node.name));
            }
            if let Some(after) = r.strip_prefix("</") {
                self.pos = self.s.len() - after.len();
                let close = self.name()?;
                self.skip_ws();
                if close != node.name || !self.rest().starts_with('>') {
                    return self.err(&format!("</{close}> does not close <{}>", node.name));
                }
                self.pos += 1;
                return Ok(node);
            }
            if r.starts_with("<!--") {
                match r.find("-->") {
                    Some(i) => self.pos += i + 3,
                    None => return self.err("unterminated comment"),
                }
                continue;
            }
            if let Some(after) = r.strip_prefix("<![CDATA[") {
                match after.find("]]>") {
                    Some(i) => {
                        node.text.push_str(&after[..i]);
                        self.pos = self.s.len() - after.len() + i + 3;
                    }
                    None => return self.err("unterminated CDATA"),
                }
                continue;
            }
            if r.starts_with('<') {
                node.children.push(self.element()?);
                continue;
            }
            let len = r.find('<').unwrap_or(r.len());
            let text = &r[..len];
            check_entities(text)
                .map_err(|e| PlistError::Xml(format!("{e} at byte {}", self.pos)))?;
            node.text.push_str(text);
            self.pos += len;
        }
    }
}

fn check_entities(text: &str) -> Result<(), String> {
    let mut rest = text;
    while let Some(i) = rest.find('&') {
        let after = &rest[i + 1..];
        let end = after.find(';').ok_or("unterminated entity")?;
        let ent = &after[..end];
        let known = matches!(ent, "amp" | "lt" | "gt" | "quot" | "apos")
            || ent
                .strip_prefix("#x")
                .is_some_and(|h| u32::from_str_radix(h, 16).is_ok())
            || ent
                .strip_prefix('#')
                .is_some_and(|d| d.parse::<u32>().is_ok());
        if !known {
            return Err(format!("unknown entity &{ent};"));
        }
        rest = &after[end + 1..];
    }
    Ok(())
}

fn check_value(n: &Node) -> Result<(), PlistError> {
    let bad = |m: String| Err(PlistError::Structure(m));
    match n.name.as_str() {
        "dict" => {
            if !n.children.len().is_multiple_of(2) {
                return bad("<dict> must hold <key>/value pairs".into());
            }
            for pair in n.children.chunks(2) {
                if pair[0].name != "key" {
                    return bad(format!(
                        "expected <key> in <dict>, found <{}>",
                        pair[0].name
                    ));
                }
                check_value(&pair[1])?;
            }
            Ok(())
        }
        "array" => n.children.iter().try_for_each(check_value),
        "string" | "data" | "date" => Ok(()),
        "integer" if n.text.trim().parse::<i64>().is_ok() => Ok(()),
        "real" if n.text.trim().parse::<f64>().is_ok() => Ok(()),
        "true" | "false" if n.children.is_empty() && n.text.trim().is_empty() => Ok(()),
        other => bad(format!("<{other}> is not a valid plist value here")),
    }
}

/// Checks a configuration profile (see the module note).
pub fn validate_profile(xml: &str) -> Result<(), PlistError> {
    let mut p = Parser { s: xml, pos: 0 };
    p.skip_misc()?;
    let root = p.element()?;
    p.skip_misc()?;
    if !p.rest().trim().is_empty() {
        return p.err("content after the root element");
    }
    if root.name != "plist" {
        return Err(PlistError::Structure(format!(
            "root element is <{}>, expected <plist>",
            root.name
        )));
    }
    let [dict] = root.children.as_slice() else {
        return Err(PlistError::Structure(
            "<plist> must contain exactly one value".into(),
        ));
    };
    if dict.name != "dict" {
        return Err(PlistError::Structure(
            "the top-level value must be a <dict>".into(),
        ));
    }
    check_value(dict)?;
    let content = dict
        .children
        .chunks(2)
        .find(|pair| pair[0].text.trim() == "PayloadContent")
        .map(|pair| &pair[1])
        .ok_or_else(|| PlistError::Structure("missing PayloadContent".into()))?;
    if content.name != "array"
        || content.children.is_empty()
        || content.children.iter().any(|c| c.name != "dict")
    {
        return Err(PlistError::Structure(
            "PayloadContent must be a non-empty array of dictionaries".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"<?xml version="1.0" encoding="UTF-8"?><!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd"><plist version="1.0"><dict><key>PayloadContent</key><array><dict><key>AccessType</key><string>WIFI_ONLY</string><key>Enabled</key><true/><key>N</key><integer>3</integer></dict></array></dict></plist>"#;

    #[test]
    fn accepts_apples_example_profile() {
        assert_eq!(validate_profile(GOOD), Ok(()));
    }

    #[test]
    fn rejects_broken_and_empty_profiles() {
        assert!(matches!(
            validate_profile("<plist><dict></plist>"),
            Err(PlistError::Xml(_))
        ));
        assert!(matches!(
            validate_profile("<?xml version=\"1.0\"?>..."),
            Err(PlistError::Xml(_))
        ));
        let empty =
            r#"<plist version="1.0"><dict><key>PayloadContent</key><array/></dict></plist>"#;
        assert!(matches!(
            validate_profile(empty),
            Err(PlistError::Structure(_))
        ));
        let missing = r#"<plist version="1.0"><dict><key>X</key><string>y</string></dict></plist>"#;
        assert!(matches!(
            validate_profile(missing),
            Err(PlistError::Structure(_))
        ));
        let odd = r#"<plist><dict><key>PayloadContent</key></dict></plist>"#;
        assert!(validate_profile(odd).is_err());
        assert!(validate_profile("<plist><dict><key>a&b</key><string/></dict></plist>").is_err());
    }
}
