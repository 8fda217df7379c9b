//! Providers indexed for the per-request work: by issuer, so that a token reaches only the
//! providers that could accept it, and by where they look for tokens, so that a location is
//! read once however many providers read it. Built once at load.

use crate::jwt::issuer_map::IssuerMap;
use crate::request::extractor::TokenLocation;

#[derive(Debug, Default)]
pub struct ProviderIndex {
    issuers: IssuerMap,
    /// The distinct lists of token locations, and each provider's list among them.
    pub groups: Vec<Vec<TokenLocation>>,
    pub group_of: Vec<usize>,
    /// Every distinct location, in the order providers name them, with the providers that
    /// read it (ascending).
    pub locations: Vec<(TokenLocation, Vec<usize>)>,
}

impl ProviderIndex {
    /// `providers`: each provider's issuer and token locations, in configuration order.
    pub fn new<'a>(
        providers: impl Iterator<Item = (Option<&'a str>, &'a [TokenLocation])>,
    ) -> Self {
        let mut index = Self::default();
        for (i, (issuer, locations)) in providers.enumerate() {
            index.issuers.insert(issuer, i);
            let group = match index.groups.iter().position(|g| g == locations) {
                Some(g) => g,
                None => {
                    index.groups.push(locations.to_vec());
                    index.groups.len() - 1
                }
            };
            index.group_of.push(group);
            for loc in locations {
                match index.locations.iter_mut().find(|(l, _)| l == loc) {
                    Some((_, readers)) => readers.push(i),
                    None => index.locations.push((loc.clone(), vec![i])),
                }
            }
        }
        index
    }

    /// The providers that could accept a token from `iss`, ascending.
    pub fn accepting(&self, iss: Option<&str>) -> Vec<usize> {
        self.issuers.accepting(iss)
    }
}
