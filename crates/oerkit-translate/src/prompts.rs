//! Versioned task prompts (`models/prompts.toml`), rendered with minijinja.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The prompts shipped with oerkit.
pub const SHIPPED_PROMPTS: &str = include_str!("../../../models/prompts.toml");

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromptTemplate {
    pub version: u32,
    pub system: String,
    pub user: String,
}

/// A rendered prompt: the system and user turns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedPrompt {
    pub system: String,
    pub user: String,
    /// `name@version`, recorded in provenance.
    pub id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error("no prompt named '{0}' in the prompt file; add a [{0}] table")]
    Missing(String),
    #[error("prompt '{name}': {message}")]
    Render { name: String, message: String },
}

/// Prompt templates by task name.
#[derive(Debug, Clone)]
pub struct PromptSet {
    templates: BTreeMap<String, PromptTemplate>,
}

impl PromptSet {
    /// The shipped prompts.
    pub fn shipped() -> Self {
        Self::parse(SHIPPED_PROMPTS, "models/prompts.toml").expect("the shipped prompts parse")
    }

    /// Loads a user prompt file; its tables replace the shipped ones of the same name.
    pub fn with_file(path: &Path) -> Result<Self, PromptError> {
        let text = std::fs::read_to_string(path).map_err(|e| PromptError::Parse {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        let mut set = Self::shipped();
        let user = Self::parse(&text, &path.display().to_string())?;
        set.templates.extend(user.templates);
        Ok(set)
    }

    pub fn parse(text: &str, origin: &str) -> Result<Self, PromptError> {
        let templates: BTreeMap<String, PromptTemplate> =
            toml::from_str(text).map_err(|e| PromptError::Parse {
                path: origin.to_string(),
                message: e.to_string(),
            })?;
        Ok(PromptSet { templates })
    }

    pub fn get(&self, name: &str) -> Result<&PromptTemplate, PromptError> {
        self.templates
            .get(name)
            .ok_or_else(|| PromptError::Missing(name.to_string()))
    }

    /// Renders the template `name` with `vars`.
    pub fn render(
        &self,
        name: &str,
        vars: &serde_json::Value,
    ) -> Result<RenderedPrompt, PromptError> {
        let template = self.get(name)?;
        let env = minijinja::Environment::new();
        let render = |src: &str| {
            env.render_str(src, vars).map_err(|e| PromptError::Render {
                name: name.to_string(),
                message: e.to_string(),
            })
        };
        Ok(RenderedPrompt {
            system: render(&template.system)?,
            user: render(&template.user)?,
            id: format!("{name}@{}", template.version),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_prompts_render_with_their_version() {
        let set = PromptSet::shipped();
        let p = set
            .render(
                "translate",
                &serde_json::json!({"source": "English", "target": "Spanish", "text": "Run <x1/>.", "has_tags": true}),
            )
            .unwrap();
        assert!(p.user.contains("Run <x1/>."));
        assert!(p.user.contains("Copy every tag"));
        assert!(p.id.starts_with("translate@"));
        let p = set
            .render("translate", &serde_json::json!({"source": "English", "target": "Spanish", "text": "Hi", "has_tags": false}))
            .unwrap();
        assert!(!p.user.contains("Copy every tag"));
    }

    #[test]
    fn missing_and_bad_prompts_are_errors() {
        let set = PromptSet::shipped();
        assert!(matches!(
            set.render("nope", &serde_json::json!({})),
            Err(PromptError::Missing(_))
        ));
        assert!(PromptSet::parse("[translate]\nversion = 'x'", "f.toml").is_err());
    }
}
