//! A state's resource blocks as a reader wants them listed: address, mode, type, provider
//! and how many instances (what the web UI's state page shows; no attribute values, which may
//! be sensitive).

use serde::Serialize;

use super::raw::RawState;

/// One resource block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResourceRow {
    /// The block's address without instance keys, e.g. `module.net.data.aws_ami.x`.
    pub address: String,
    /// `managed` or `data`.
    pub mode: String,
    /// The resource type, e.g. `aws_instance`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The provider as Terraform records it, shortened to its source address
    /// (`registry.terraform.io/hashicorp/null`); empty when the state names none.
    pub provider: String,
    pub instances: usize,
}

/// The resource blocks of a state document, in the document's order; an error says why it is
/// not one, and an encrypted state has none that can be read.
pub fn resources(bytes: &[u8]) -> Result<Vec<ResourceRow>, String> {
    let raw = RawState::parse(bytes)?;
    if raw.encrypted() {
        return Err("the state is OpenTofu-encrypted; its resources cannot be read".to_owned());
    }
    Ok(raw
        .resources
        .into_iter()
        .map(|r| {
            let mode = r.mode.unwrap_or_else(|| "managed".to_owned());
            let mut address = String::new();
            if let Some(module) = r.module.as_deref().filter(|m| !m.is_empty()) {
                address.push_str(module);
                address.push('.');
            }
            if mode == "data" {
                address.push_str("data.");
            }
            address.push_str(&format!("{}.{}", r.kind, r.name));
            ResourceRow {
                address,
                mode,
                kind: r.kind,
                provider: r
                    .provider
                    .as_deref()
                    .map(provider_source)
                    .unwrap_or_default(),
                instances: r.instances.len(),
            }
        })
        .collect())
}

/// `provider["registry.terraform.io/hashicorp/null"].alias` → `registry.terraform.io/hashicorp/null.alias`.
fn provider_source(recorded: &str) -> String {
    let Some(rest) = recorded.strip_prefix("provider[\"") else {
        return recorded.to_owned();
    };
    match rest.split_once("\"]") {
        Some((source, alias)) => format!("{source}{alias}"),
        None => recorded.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_blocks_with_type_provider_and_instances() {
        let state = br#"{"version":4,"serial":1,"lineage":"L","resources":[
          {"module":"module.net","mode":"data","type":"aws_ami","name":"x",
           "provider":"module.net.provider[\"registry.terraform.io/hashicorp/aws\"]","instances":[{}]},
          {"mode":"managed","type":"null_resource","name":"n",
           "provider":"provider[\"registry.terraform.io/hashicorp/null\"].two","instances":[{},{}]}]}"#;
        let rows = resources(state).unwrap();
        assert_eq!(rows[0].address, "module.net.data.aws_ami.x");
        assert_eq!(rows[0].mode, "data");
        assert_eq!(
            rows[0].provider, r#"module.net.provider["registry.terraform.io/hashicorp/aws"]"#,
            "a module's provider reference is kept as recorded"
        );
        assert_eq!(rows[1].address, "null_resource.n");
        assert_eq!(rows[1].kind, "null_resource");
        assert_eq!(rows[1].provider, "registry.terraform.io/hashicorp/null.two");
        assert_eq!(rows[1].instances, 2);
    }

    #[test]
    fn encrypted_and_non_states_are_refused() {
        assert!(resources(b"[1]").is_err());
        let sealed =
            br#"{"serial":1,"lineage":"L","encrypted_data":"x","encryption_version":"v0"}"#;
        assert!(resources(sealed).unwrap_err().contains("encrypted"));
        assert_eq!(resources(br#"{"version":4}"#).unwrap(), []);
    }
}
