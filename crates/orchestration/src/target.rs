//! Which cluster overlays a workflow works on: one customer, every customer, or the repo's own
//! overlays (a single-customer repo), narrowed to one cluster or not.
//!
//! Every workflow selects through [`Target`], so "every customer" is always a deliberate choice
//! ([`Customers::All`], from `--all-customers` or `customer=*`) and never what an empty or missing
//! value happens to mean. This module only reads the repository's directory layout; it never
//! stages, prints or decrypts.

use crate::repo::{self, Overlay};
use anyhow::{Result, bail};
use ocitool_adapters::changeset::Changeset;
use std::fmt;

/// The customer value that selects every customer.
pub const ALL_CUSTOMERS: &str = "*";

/// Whose overlays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Customers {
    /// No customer named: the repo's own `applications/overlays/` (a single-customer repo).
    Unnamed,
    /// `customers/<customer>/applications/overlays/` or `<customer>/applications/overlays/` (see [`repo::overlays`]).
    Named(String),
    /// Every customer's overlays, and the repo's own.
    All,
}

/// A workflow's selection of cluster overlays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    customers: Customers,
    cluster: Option<String>,
}

impl Target {
    /// From the `customer` and `cluster` parameters: absent means "not narrowed", [`ALL_CUSTOMERS`]
    /// selects every customer, and an empty value (an unset shell variable) is refused.
    pub fn new(customer: Option<&str>, cluster: Option<&str>) -> Result<Self> {
        for (name, value) in [("customer", customer), ("cluster", cluster)] {
            if value.is_some_and(|v| v.trim().is_empty()) {
                bail!(
                    "--set {name}= is empty; name one (an unset shell variable?), or leave it out{}",
                    if name == "customer" {
                        " and select every customer with --all-customers"
                    } else {
                        " to select every cluster"
                    }
                );
            }
        }
        let customers = match customer {
            None => Customers::Unnamed,
            Some(ALL_CUSTOMERS) => Customers::All,
            Some(name) => Customers::Named(name.to_string()),
        };
        Ok(Target {
            customers,
            cluster: cluster.map(str::to_string),
        })
    }

    pub fn customers(&self) -> &Customers {
        &self.customers
    }

    /// The one cluster named, if any.
    pub fn cluster(&self) -> Option<&str> {
        self.cluster.as_deref()
    }

    /// True when the selection is one named overlay: it is then one unit of work.
    pub fn is_one_overlay(&self) -> bool {
        self.cluster.is_some() && self.customers != Customers::All
    }

    /// The selected overlays, sorted as the repository lists them; an error when there are none,
    /// or when no customer is named in a repository that has customers.
    pub fn overlays(&self, cs: &Changeset) -> Result<Vec<Overlay>> {
        let customer = match &self.customers {
            Customers::Named(name) => Some(name.as_str()),
            Customers::Unnamed | Customers::All => None,
        };
        if let (Some(cluster), true) = (&self.cluster, self.is_one_overlay()) {
            return Ok(vec![repo::overlay(cs, customer, cluster)?]);
        }
        let mut found = repo::overlays(cs, customer)?;
        if self.customers == Customers::Unnamed {
            found.retain(|o| o.customer.is_none());
            if found.is_empty() {
                bail!(
                    "no customer named and {} has no applications/overlays/ of its own; pass --set customer=NAME \
                     (customers here: {}) or --all-customers",
                    cs.root().display(),
                    repo::list_or_none(&repo::customers(cs))
                );
            }
        }
        if let Some(cluster) = &self.cluster {
            found.retain(|o| &o.cluster == cluster);
        }
        if found.is_empty() {
            bail!("no cluster overlays found for {self}");
        }
        Ok(found)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cluster = self.cluster.as_deref().unwrap_or("every cluster");
        match &self.customers {
            Customers::Unnamed => write!(f, "{cluster} of this repository"),
            Customers::Named(name) => write!(f, "{cluster} of customer {name}"),
            Customers::All => write!(f, "{cluster} of every customer"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fleet() -> (tempfile::TempDir, Changeset) {
        let dir = tempfile::tempdir().unwrap();
        for overlay in [
            "acme/applications/overlays/prod",
            "acme/applications/overlays/dev",
            "beta/applications/overlays/prod",
        ] {
            std::fs::create_dir_all(dir.path().join(overlay)).unwrap();
        }
        let cs = Changeset::new(dir.path()).unwrap();
        (dir, cs)
    }

    fn labels(target: &Target, cs: &Changeset) -> Vec<String> {
        target
            .overlays(cs)
            .unwrap()
            .iter()
            .map(Overlay::label)
            .collect()
    }

    #[test]
    fn empty_values_are_refused_and_star_selects_every_customer() {
        assert!(
            Target::new(Some(""), None)
                .unwrap_err()
                .to_string()
                .contains("--all-customers")
        );
        assert!(Target::new(Some("acme"), Some(" ")).is_err());
        let (_dir, cs) = fleet();
        let all = Target::new(Some(ALL_CUSTOMERS), None).unwrap();
        assert_eq!(labels(&all, &cs), ["acme/dev", "acme/prod", "beta/prod"]);
        let prods = Target::new(Some(ALL_CUSTOMERS), Some("prod")).unwrap();
        assert_eq!(labels(&prods, &cs), ["acme/prod", "beta/prod"]);
        assert!(!prods.is_one_overlay());
    }

    #[test]
    fn a_missing_customer_never_means_every_customer() {
        let (_dir, cs) = fleet();
        let err = Target::new(None, None).unwrap().overlays(&cs).unwrap_err();
        assert!(
            err.to_string().contains("customers here: acme, beta"),
            "{err}"
        );
        let one = Target::new(Some("acme"), Some("prod")).unwrap();
        assert!(one.is_one_overlay());
        assert_eq!(labels(&one, &cs), ["acme/prod"]);
    }
}
