//! The providers of the `dns-update` crate, each with its config keys mapped to
//! the crate's constructor (key names are the constructor's argument names
//! without underscores). Providers we implement ourselves (`rfc2136`,
//! `powerdns`, `inwx`) are not taken from the crate.

use dns_update::{DnsUpdater, providers};

use super::capability::{Application, Capabilities};
use super::dnsupdate::{Keys, TIMEOUT, ZONE_KEY};
use super::{KeyError, KeySpec, ProviderSpec};

const REQUIRED: bool = true;
const OPTIONAL: bool = false;
const SECRET: bool = true;
const PLAIN: bool = false;

/// One registry entry: name, aliases, keys (name, required, secret, doc), the
/// constructor call with `k` the [`Keys`] of the domain, and the record types
/// the crate's client for it writes (default: all nine, see [`types`]). Every
/// entry also takes `zone`.
macro_rules! provider {
    ($name:literal, [$($alias:literal),*], [$(($key:literal, $required:expr, $secret:expr, $doc:literal)),* $(,)?], |$k:ident| $body:expr) => {
        provider!($name, [$($alias),*], [$(($key, $required, $secret, $doc)),*], |$k| $body, types = types::ALL)
    };
    ($name:literal, [$($alias:literal),*], [$(($key:literal, $required:expr, $secret:expr, $doc:literal)),* $(,)?], |$k:ident| $body:expr, types = $types:expr) => {{
        const KEYS: &[KeySpec] = &[
            $(KeySpec { name: $key, required: $required, secret: $secret, doc: $doc },)*
            ZONE_KEY,
        ];
        ProviderSpec {
            name: $name,
            aliases: &[$($alias),*],
            keys: KEYS,
            capabilities: Capabilities {
                types: $types,
                // The crate has no SOA records.
                soa: &[],
                application: Application::PerRRset,
            },
            build: |values| {
                crate::http::install_crypto_provider();
                let $k = Keys::new($name, values, KEYS);
                let built = $body;
                $k.finish(built)
            },
        }
    }};
}

/// The record types the crate's clients write (dns-update 0.6.1: the types
/// each client answers `Unsupported` for are left out).
pub(crate) mod types {
    use crate::dns::record::RecordType::{self, A, Aaaa, Caa, Cname, Mx, Ns, Srv, Tlsa, Txt};

    pub(crate) const ALL: &[RecordType] = &[A, Aaaa, Cname, Ns, Mx, Txt, Srv, Tlsa, Caa];
    pub(crate) const NO_TLSA: &[RecordType] = &[A, Aaaa, Cname, Ns, Mx, Txt, Srv, Caa];
    pub(crate) const NO_TLSA_CAA: &[RecordType] = &[A, Aaaa, Cname, Ns, Mx, Txt, Srv];
    pub(crate) const NO_TLSA_SRV: &[RecordType] = &[A, Aaaa, Cname, Ns, Mx, Txt, Caa];
    pub(crate) const NO_TLSA_NS: &[RecordType] = &[A, Aaaa, Cname, Mx, Txt, Srv, Caa];
    pub(crate) const NO_NS: &[RecordType] = &[A, Aaaa, Cname, Mx, Txt, Srv, Tlsa, Caa];
    pub(crate) const NO_SRV_CAA_TLSA: &[RecordType] = &[A, Aaaa, Cname, Ns, Mx, Txt];
    pub(crate) const TXT_ONLY: &[RecordType] = &[Txt];
    /// Clients that can only replace one TXT record (`set_rrset`), which the
    /// program does not use: they cannot add to or remove from an RRset.
    pub(crate) const NONE: &[RecordType] = &[];
}

/// Every provider taken from the crate.
pub(crate) const SPECS: &[ProviderSpec] = &[
    provider!(
        "cloudflare",
        [],
        [(
            "apitoken",
            REQUIRED,
            SECRET,
            "API token with the Zone DNS Edit permission"
        ),],
        |k| DnsUpdater::new_cloudflare(k.req("apitoken")?, TIMEOUT)
    ),
    provider!(
        "digitalocean",
        [],
        [(
            "authtoken",
            REQUIRED,
            SECRET,
            "personal access token with write scope"
        ),],
        |k| DnsUpdater::new_digitalocean(k.req("authtoken")?, TIMEOUT),
        types = types::NO_TLSA
    ),
    provider!(
        "desec",
        [],
        [("authtoken", REQUIRED, SECRET, "deSEC token"),],
        |k| DnsUpdater::new_desec(k.req("authtoken")?, TIMEOUT)
    ),
    provider!(
        "constellix",
        [],
        [
            ("apikey", REQUIRED, SECRET, "API key"),
            ("secretkey", REQUIRED, SECRET, "secret key"),
        ],
        |k| DnsUpdater::new_constellix(k.req("apikey")?, k.req("secretkey")?, TIMEOUT),
        types = types::NO_TLSA
    ),
    provider!(
        "dnsmadeeasy",
        [],
        [
            ("apikey", REQUIRED, SECRET, "API key"),
            ("apisecret", REQUIRED, SECRET, "API secret"),
        ],
        |k| DnsUpdater::new_dnsmadeeasy(k.req("apikey")?, k.req("apisecret")?, TIMEOUT),
        types = types::NO_TLSA
    ),
    provider!(
        "ovh",
        [],
        [
            ("applicationkey", REQUIRED, PLAIN, "application key"),
            ("applicationsecret", REQUIRED, SECRET, "application secret"),
            ("consumerkey", REQUIRED, SECRET, "consumer key"),
            (
                "endpoint",
                OPTIONAL,
                PLAIN,
                "ovh-eu (default), ovh-us, ovh-ca, kimsufi-eu, kimsufi-ca, soyoustart-eu, soyoustart-ca"
            ),
        ],
        |k| DnsUpdater::new_ovh(
            k.req("applicationkey")?,
            k.req("applicationsecret")?,
            k.req("consumerkey")?,
            ovh_endpoint(&k)?,
            TIMEOUT
        )
    ),
    provider!(
        "oraclecloud",
        [],
        [
            ("tenancyocid", REQUIRED, PLAIN, "tenancy OCID"),
            ("userocid", REQUIRED, PLAIN, "user OCID"),
            ("fingerprint", REQUIRED, PLAIN, "API key fingerprint"),
            (
                "privatekeypem",
                REQUIRED,
                SECRET,
                "the API private key (PEM text)"
            ),
            ("privatekeypassword", OPTIONAL, SECRET, "its passphrase"),
            ("region", REQUIRED, PLAIN, "region, e.g. eu-frankfurt-1"),
            ("compartmentocid", REQUIRED, PLAIN, "compartment OCID"),
        ],
        |k| DnsUpdater::new_oraclecloud(providers::oraclecloud::OracleCloudConfig {
            tenancy_ocid: k.req("tenancyocid")?,
            user_ocid: k.req("userocid")?,
            fingerprint: k.req("fingerprint")?,
            private_key_pem: k.req("privatekeypem")?,
            private_key_password: k.opt("privatekeypassword"),
            region: k.req("region")?,
            compartment_ocid: k.req("compartmentocid")?,
            request_timeout: TIMEOUT
        })
    ),
    provider!(
        "bunny",
        [],
        [("apikey", REQUIRED, SECRET, "API key"),],
        |k| DnsUpdater::new_bunny(k.req("apikey")?, TIMEOUT)
    ),
    provider!(
        "linode",
        [],
        [("authtoken", REQUIRED, SECRET, "personal access token"),],
        |k| DnsUpdater::new_linode(k.req("authtoken")?, TIMEOUT),
        types = types::NO_TLSA
    ),
    provider!(
        "porkbun",
        [],
        [
            ("apikey", REQUIRED, SECRET, "API key"),
            ("secretapikey", REQUIRED, SECRET, "secret API key"),
        ],
        |k| DnsUpdater::new_porkbun(k.req("apikey")?, k.req("secretapikey")?, TIMEOUT)
    ),
    provider!(
        "exoscale",
        [],
        [
            ("apikey", REQUIRED, SECRET, "API key"),
            ("apisecret", REQUIRED, SECRET, "API secret"),
        ],
        |k| DnsUpdater::new_exoscale(k.req("apikey")?, k.req("apisecret")?, TIMEOUT),
        types = types::NO_TLSA
    ),
    provider!(
        "nifcloud",
        [],
        [
            ("accesskey", REQUIRED, PLAIN, "access key"),
            ("secretkey", REQUIRED, SECRET, "secret key"),
        ],
        |k| DnsUpdater::new_nifcloud(k.req("accesskey")?, k.req("secretkey")?, TIMEOUT),
        types = types::NO_SRV_CAA_TLSA
    ),
    provider!(
        "websupport",
        [],
        [
            ("apikey", REQUIRED, SECRET, "API key"),
            ("secret", REQUIRED, SECRET, "API secret"),
        ],
        |k| DnsUpdater::new_websupport(k.req("apikey")?, k.req("secret")?, TIMEOUT),
        types = types::NO_TLSA
    ),
    provider!(
        "spaceship",
        [],
        [
            ("apikey", REQUIRED, SECRET, "API key"),
            ("apisecret", REQUIRED, SECRET, "API secret"),
        ],
        |k| DnsUpdater::new_spaceship(k.req("apikey")?, k.req("apisecret")?, TIMEOUT)
    ),
    provider!(
        "dnsimple",
        [],
        [
            ("authtoken", REQUIRED, SECRET, "API access token"),
            ("accountid", REQUIRED, PLAIN, "account id"),
        ],
        |k| DnsUpdater::new_dnsimple(k.req("authtoken")?, k.req("accountid")?, TIMEOUT)
    ),
    provider!(
        "gandiv5",
        ["gandi"],
        [(
            "personalaccesstoken",
            REQUIRED,
            SECRET,
            "personal access token (LiveDNS)"
        ),],
        |k| DnsUpdater::new_gandiv5(k.req("personalaccesstoken")?, TIMEOUT)
    ),
    provider!(
        "godaddy",
        [],
        [
            ("apikey", REQUIRED, SECRET, "API key"),
            ("apisecret", REQUIRED, SECRET, "API secret"),
        ],
        |k| DnsUpdater::new_godaddy(k.req("apikey")?, k.req("apisecret")?, TIMEOUT),
        types = types::NO_TLSA
    ),
    provider!(
        "hetzner",
        [],
        [(
            "apitoken",
            REQUIRED,
            SECRET,
            "Hetzner Cloud API token (read and write)"
        ),],
        |k| DnsUpdater::new_hetzner(k.req("apitoken")?, TIMEOUT)
    ),
    provider!(
        "namedotcom",
        [],
        [
            ("username", REQUIRED, PLAIN, "account name"),
            ("apitoken", REQUIRED, SECRET, "API token"),
        ],
        |k| DnsUpdater::new_namedotcom(k.req("username")?, k.req("apitoken")?, TIMEOUT),
        types = types::NO_TLSA
    ),
    provider!(
        "namesilo",
        [],
        [("apikey", REQUIRED, SECRET, "API key"),],
        |k| DnsUpdater::new_namesilo(k.req("apikey")?, TIMEOUT),
        types = types::NO_TLSA_NS
    ),
    provider!(
        "duckdns",
        [],
        [("token", REQUIRED, SECRET, "account token"),],
        |k| DnsUpdater::new_duckdns(k.req("token")?, TIMEOUT),
        types = types::NONE
    ),
    provider!(
        "freemyip",
        [],
        [("token", REQUIRED, SECRET, "domain token"),],
        |k| DnsUpdater::new_freemyip(k.req("token")?, TIMEOUT),
        types = types::TXT_ONLY
    ),
    provider!(
        "ipv64",
        [],
        [("apikey", REQUIRED, SECRET, "API key"),],
        |k| DnsUpdater::new_ipv64(k.req("apikey")?, TIMEOUT),
        types = types::NO_TLSA_CAA
    ),
    provider!(
        "ddnss",
        [],
        [("key", REQUIRED, SECRET, "update key"),],
        |k| DnsUpdater::new_ddnss(k.req("key")?, TIMEOUT),
        types = types::NONE
    ),
    provider!(
        "dynu",
        [],
        [("apikey", REQUIRED, SECRET, "API key"),],
        |k| DnsUpdater::new_dynu(k.req("apikey")?, TIMEOUT)
    ),
    provider!(
        "googleclouddns",
        ["gcloud"],
        [
            (
                "serviceaccountjson",
                REQUIRED,
                SECRET,
                "service account key (JSON text)"
            ),
            ("projectid", REQUIRED, PLAIN, "project id"),
            ("managedzone", OPTIONAL, PLAIN, "managed zone name"),
            ("privatezone", OPTIONAL, PLAIN, "yes to use a private zone"),
            (
                "impersonateserviceaccount",
                OPTIONAL,
                PLAIN,
                "service account to impersonate"
            ),
        ],
        |k| DnsUpdater::new_google_cloud_dns(providers::google_cloud_dns::GoogleCloudDnsConfig {
            service_account_json: k.req("serviceaccountjson")?,
            project_id: k.req("projectid")?,
            managed_zone: k.opt("managedzone"),
            private_zone: k.flag("privatezone")?,
            impersonate_service_account: k.opt("impersonateserviceaccount"),
            request_timeout: TIMEOUT
        })
    ),
    provider!(
        "route53",
        [],
        [
            ("accesskeyid", REQUIRED, PLAIN, "AWS access key id"),
            ("secretaccesskey", REQUIRED, SECRET, "AWS secret access key"),
            ("sessiontoken", OPTIONAL, SECRET, "session token"),
            ("region", OPTIONAL, PLAIN, "region (default us-east-1)"),
            ("hostedzoneid", OPTIONAL, PLAIN, "hosted zone id"),
            (
                "privatezoneonly",
                OPTIONAL,
                PLAIN,
                "yes for private zones only"
            ),
            ("endpoint", OPTIONAL, PLAIN, "API endpoint URL"),
        ],
        |k| DnsUpdater::new_route53(providers::route53::Route53Config {
            access_key_id: k.req("accesskeyid")?,
            secret_access_key: k.req("secretaccesskey")?,
            session_token: k.opt("sessiontoken"),
            region: k.opt("region"),
            hosted_zone_id: k.opt("hostedzoneid"),
            private_zone_only: k
                .opt("privatezoneonly")
                .map(|_| k.flag("privatezoneonly"))
                .transpose()?,
            endpoint: k.opt("endpoint")
        })
    ),
    provider!(
        "vultr",
        [],
        [("apikey", REQUIRED, SECRET, "API key"),],
        |k| DnsUpdater::new_vultr(k.req("apikey")?, TIMEOUT),
        types = types::NO_TLSA
    ),
    provider!(
        "scaleway",
        [],
        [("apitoken", REQUIRED, SECRET, "API secret key"),],
        |k| DnsUpdater::new_scaleway(k.req("apitoken")?, TIMEOUT)
    ),
    provider!(
        "selectel",
        [],
        [
            ("username", REQUIRED, PLAIN, "service user"),
            ("password", REQUIRED, SECRET, "its password"),
            ("accountid", REQUIRED, PLAIN, "account id"),
            ("projectid", REQUIRED, PLAIN, "project id"),
        ],
        |k| DnsUpdater::new_selectel(
            k.req("username")?,
            k.req("password")?,
            k.req("accountid")?,
            k.req("projectid")?,
            TIMEOUT
        ),
        types = types::NO_TLSA
    ),
    provider!(
        "gcore",
        [],
        [("apitoken", REQUIRED, SECRET, "permanent API token"),],
        |k| DnsUpdater::new_gcore(k.req("apitoken")?, TIMEOUT)
    ),
    provider!(
        "vercel",
        [],
        [
            ("authtoken", REQUIRED, SECRET, "access token"),
            ("teamid", OPTIONAL, PLAIN, "team id"),
        ],
        |k| DnsUpdater::new_vercel(k.req("authtoken")?, k.opt("teamid"), TIMEOUT),
        types = types::NO_TLSA
    ),
    provider!(
        "ionos",
        [],
        [("apikey", REQUIRED, SECRET, "API key (prefix.secret)"),],
        |k| DnsUpdater::new_ionos(k.req("apikey")?, TIMEOUT),
        types = types::NO_TLSA
    ),
    provider!(
        "hostingde",
        [],
        [("apikey", REQUIRED, SECRET, "API key"),],
        |k| DnsUpdater::new_hostingde(k.req("apikey")?, TIMEOUT)
    ),
    provider!(
        "domeneshop",
        [],
        [
            ("apitoken", REQUIRED, SECRET, "API token"),
            ("apisecret", REQUIRED, SECRET, "API secret"),
        ],
        |k| DnsUpdater::new_domeneshop(k.req("apitoken")?, k.req("apisecret")?, TIMEOUT),
        types = types::NO_TLSA
    ),
    provider!(
        "simplycom",
        [],
        [
            ("accountname", REQUIRED, PLAIN, "account name"),
            ("apikey", REQUIRED, SECRET, "API key"),
        ],
        |k| DnsUpdater::new_simplycom(k.req("accountname")?, k.req("apikey")?, TIMEOUT)
    ),
    provider!(
        "safedns",
        [],
        [("authtoken", REQUIRED, SECRET, "API key"),],
        |k| DnsUpdater::new_safedns(k.req("authtoken")?, TIMEOUT),
        types = types::NO_TLSA
    ),
    provider!(
        "arvancloud",
        [],
        [("apikey", REQUIRED, SECRET, "API key"),],
        |k| DnsUpdater::new_arvancloud(k.req("apikey")?, TIMEOUT)
    ),
    provider!(
        "infomaniak",
        [],
        [("accesstoken", REQUIRED, SECRET, "API token"),],
        |k| DnsUpdater::new_infomaniak(k.req("accesstoken")?, TIMEOUT)
    ),
    provider!("ns1", [], [("apikey", REQUIRED, SECRET, "API key"),], |k| {
        DnsUpdater::new_ns1(k.req("apikey")?, TIMEOUT)
    }),
    provider!(
        "luadns",
        [],
        [
            ("apiusername", REQUIRED, PLAIN, "account e-mail"),
            ("apitoken", REQUIRED, SECRET, "API token"),
        ],
        |k| DnsUpdater::new_luadns(k.req("apiusername")?, k.req("apitoken")?, TIMEOUT)
    ),
    provider!(
        "netcup",
        [],
        [
            ("customernumber", REQUIRED, PLAIN, "customer number"),
            ("apikey", REQUIRED, SECRET, "API key"),
            ("apipassword", REQUIRED, SECRET, "API password"),
        ],
        |k| DnsUpdater::new_netcup(
            k.req("customernumber")?,
            k.req("apikey")?,
            k.req("apipassword")?,
            TIMEOUT
        )
    ),
    provider!(
        "netlify",
        [],
        [("accesstoken", REQUIRED, SECRET, "personal access token"),],
        |k| DnsUpdater::new_netlify(k.req("accesstoken")?, TIMEOUT),
        types = types::NO_TLSA
    ),
    provider!(
        "alidns",
        [],
        [
            ("accesskey", REQUIRED, PLAIN, "AccessKey id"),
            ("secretkey", REQUIRED, SECRET, "AccessKey secret"),
            ("region", OPTIONAL, PLAIN, "region"),
            ("securitytoken", OPTIONAL, SECRET, "STS token"),
            ("line", OPTIONAL, PLAIN, "resolution line"),
        ],
        |k| DnsUpdater::new_alidns(
            k.req("accesskey")?,
            k.req("secretkey")?,
            k.opt("region"),
            k.opt("securitytoken"),
            k.opt("line"),
            TIMEOUT
        ),
        types = types::NO_TLSA
    ),
    provider!(
        "huaweicloud",
        [],
        [
            ("accesskey", REQUIRED, PLAIN, "access key id"),
            ("secretkey", REQUIRED, SECRET, "secret access key"),
            ("region", REQUIRED, PLAIN, "region"),
        ],
        |k| DnsUpdater::new_huaweicloud(
            k.req("accesskey")?,
            k.req("secretkey")?,
            k.req("region")?,
            TIMEOUT
        ),
        types = types::NO_TLSA
    ),
    provider!(
        "cloudns",
        [],
        [
            ("authid", OPTIONAL, PLAIN, "API user id"),
            (
                "subauthid",
                OPTIONAL,
                PLAIN,
                "API sub-user id (instead of authid)"
            ),
            ("authpassword", REQUIRED, SECRET, "API password"),
        ],
        |k| DnsUpdater::new_cloudns(
            k.opt("authid"),
            k.opt("subauthid"),
            k.req("authpassword")?,
            TIMEOUT
        )
    ),
    provider!(
        "tencentcloud",
        [],
        [
            ("secretid", REQUIRED, PLAIN, "SecretId"),
            ("secretkey", REQUIRED, SECRET, "SecretKey"),
            ("region", OPTIONAL, PLAIN, "region"),
            ("sessiontoken", OPTIONAL, SECRET, "session token"),
        ],
        |k| DnsUpdater::new_tencentcloud(
            k.req("secretid")?,
            k.req("secretkey")?,
            k.opt("region"),
            k.opt("sessiontoken"),
            TIMEOUT
        ),
        types = types::NO_TLSA
    ),
    provider!(
        "baiducloud",
        [],
        [
            ("accesskey", REQUIRED, PLAIN, "access key"),
            ("secretkey", REQUIRED, SECRET, "secret key"),
        ],
        |k| DnsUpdater::new_baiducloud(k.req("accesskey")?, k.req("secretkey")?, TIMEOUT),
        types = types::NO_TLSA
    ),
    provider!(
        "easydns",
        [],
        [
            ("token", REQUIRED, SECRET, "API token"),
            ("key", REQUIRED, SECRET, "API key"),
        ],
        |k| DnsUpdater::new_easydns(k.req("token")?, k.req("key")?, TIMEOUT),
        types = types::NO_TLSA
    ),
    provider!(
        "joker",
        [],
        [
            (
                "apikey",
                OPTIONAL,
                SECRET,
                "API key (or username and password)"
            ),
            ("username", OPTIONAL, PLAIN, "account name"),
            ("password", OPTIONAL, SECRET, "its password"),
        ],
        |k| DnsUpdater::new_joker(joker_auth(&k)?, TIMEOUT),
        types = types::NO_TLSA
    ),
    provider!(
        "mythicbeasts",
        [],
        [
            ("username", REQUIRED, PLAIN, "API key id"),
            ("password", REQUIRED, SECRET, "API secret"),
        ],
        |k| DnsUpdater::new_mythicbeasts(k.req("username")?, k.req("password")?, TIMEOUT)
    ),
    provider!(
        "namecheap",
        [],
        [
            ("apiuser", REQUIRED, PLAIN, "API user"),
            ("apikey", REQUIRED, SECRET, "API key"),
            (
                "clientip",
                REQUIRED,
                PLAIN,
                "the whitelisted IP address of this host"
            ),
            (
                "username",
                OPTIONAL,
                PLAIN,
                "account name (default apiuser)"
            ),
        ],
        |k| DnsUpdater::new_namecheap(
            k.req("apiuser")?,
            k.req("apikey")?,
            k.req("clientip")?,
            k.opt("username"),
            TIMEOUT
        ),
        types = types::NO_TLSA_SRV
    ),
    provider!(
        "transip",
        [],
        [
            ("login", REQUIRED, PLAIN, "account name"),
            (
                "privatekeypem",
                REQUIRED,
                SECRET,
                "the API private key (PEM text)"
            ),
            (
                "globalkey",
                OPTIONAL,
                PLAIN,
                "yes when the key is not IP-restricted"
            ),
        ],
        |k| DnsUpdater::new_transip(
            k.req("login")?,
            k.req("privatekeypem")?,
            k.flag("globalkey")?,
            TIMEOUT
        )
    ),
    provider!(
        "bluecatv2",
        [],
        [
            ("serverurl", REQUIRED, PLAIN, "BlueCat Address Manager URL"),
            ("username", REQUIRED, PLAIN, "user"),
            ("password", REQUIRED, SECRET, "its password"),
            ("configname", REQUIRED, PLAIN, "configuration name"),
            ("viewname", REQUIRED, PLAIN, "DNS view name"),
            (
                "skipdeploy",
                OPTIONAL,
                PLAIN,
                "yes to skip the quick deploy"
            ),
        ],
        |k| DnsUpdater::new_bluecatv2(providers::bluecatv2::BluecatV2Config {
            server_url: k.req("serverurl")?,
            username: k.req("username")?,
            password: k.req("password")?,
            config_name: k.req("configname")?,
            view_name: k.req("viewname")?,
            skip_deploy: k.flag("skipdeploy")?,
            request_timeout: TIMEOUT
        }),
        types = types::NO_TLSA
    ),
    provider!(
        "glesys",
        [],
        [
            ("apiuser", REQUIRED, PLAIN, "API user"),
            ("apikey", REQUIRED, SECRET, "API key"),
        ],
        |k| DnsUpdater::new_glesys(k.req("apiuser")?, k.req("apikey")?, TIMEOUT),
        types = types::NO_TLSA
    ),
    provider!(
        "dreamhost",
        [],
        [("apikey", REQUIRED, SECRET, "API key"),],
        |k| DnsUpdater::new_dreamhost(k.req("apikey")?, TIMEOUT),
        types = types::NO_TLSA_CAA
    ),
    provider!(
        "volcengine",
        [],
        [
            ("accesskey", REQUIRED, PLAIN, "access key"),
            ("secretkey", REQUIRED, SECRET, "secret key"),
            ("region", OPTIONAL, PLAIN, "region"),
            ("host", OPTIONAL, PLAIN, "API host"),
            ("scheme", OPTIONAL, PLAIN, "http or https"),
        ],
        |k| DnsUpdater::new_volcengine(providers::volcengine::VolcengineConfig {
            access_key: k.req("accesskey")?,
            secret_key: k.req("secretkey")?,
            region: k.opt("region"),
            host: k.opt("host"),
            scheme: k.opt("scheme"),
            request_timeout: TIMEOUT
        }),
        types = types::NO_TLSA
    ),
    provider!(
        "yandexcloud",
        [],
        [
            (
                "iamtokenb64",
                REQUIRED,
                SECRET,
                "service account authorized key (base64)"
            ),
            ("folderid", REQUIRED, PLAIN, "folder id"),
        ],
        |k| DnsUpdater::new_yandexcloud(providers::yandexcloud::YandexCloudConfig {
            iam_token_b64: k.req("iamtokenb64")?,
            folder_id: k.req("folderid")?,
            request_timeout: TIMEOUT
        }),
        types = types::NO_TLSA
    ),
    provider!(
        "azuredns",
        ["azure"],
        [
            ("tenantid", REQUIRED, PLAIN, "tenant id"),
            ("clientid", REQUIRED, PLAIN, "client (application) id"),
            ("clientsecret", REQUIRED, SECRET, "client secret"),
            ("subscriptionid", REQUIRED, PLAIN, "subscription id"),
            ("resourcegroup", REQUIRED, PLAIN, "resource group"),
            (
                "environment",
                OPTIONAL,
                PLAIN,
                "public (default), china or usgovernment"
            ),
        ],
        |k| DnsUpdater::new_azuredns(providers::azuredns::AzureDnsConfig {
            tenant_id: k.req("tenantid")?,
            client_id: k.req("clientid")?,
            client_secret: k.req("clientsecret")?,
            subscription_id: k.req("subscriptionid")?,
            resource_group: k.req("resourcegroup")?,
            environment: providers::azuredns::AzureEnvironment::from_str_lossy(
                &k.opt("environment").unwrap_or_default()
            ),
            request_timeout: TIMEOUT
        }),
        types = types::NO_TLSA
    ),
    provider!(
        "ibmcloud",
        [],
        [
            ("username", REQUIRED, PLAIN, "API user name"),
            ("apikey", REQUIRED, SECRET, "API key"),
        ],
        |k| DnsUpdater::new_ibmcloud(k.req("username")?, k.req("apikey")?, TIMEOUT),
        types = types::NO_TLSA_CAA
    ),
    provider!(
        "hurricane",
        [],
        [(
            "password",
            REQUIRED,
            SECRET,
            "the dynamic DNS key of the zone (zone is required)"
        ),],
        |k| DnsUpdater::new_hurricane(
            std::collections::HashMap::from([(k.req("zone")?, k.req("password")?)]),
            TIMEOUT
        ),
        types = types::NONE
    ),
    provider!(
        "hostinger",
        [],
        [("apitoken", REQUIRED, SECRET, "API token"),],
        |k| DnsUpdater::new_hostinger(k.req("apitoken")?, TIMEOUT)
    ),
    provider!(
        "autodns",
        [],
        [
            ("username", REQUIRED, PLAIN, "user"),
            ("password", REQUIRED, SECRET, "its password"),
            ("context", OPTIONAL, PLAIN, "context number (default 4)"),
        ],
        |k| DnsUpdater::new_autodns(
            k.req("username")?,
            k.req("password")?,
            k.number("context")?,
            TIMEOUT
        )
    ),
    provider!(
        "plesk",
        [],
        [
            (
                "baseurl",
                REQUIRED,
                PLAIN,
                "Plesk URL, e.g. https://host:8443"
            ),
            ("apikey", REQUIRED, SECRET, "API key"),
        ],
        |k| DnsUpdater::new_plesk(k.req("baseurl")?, k.req("apikey")?, TIMEOUT),
        types = types::NO_TLSA
    ),
    provider!(
        "cpanel",
        [],
        [
            (
                "baseurl",
                REQUIRED,
                PLAIN,
                "cPanel URL, e.g. https://host:2083"
            ),
            ("username", REQUIRED, PLAIN, "cPanel user"),
            ("token", REQUIRED, SECRET, "API token"),
        ],
        |k| DnsUpdater::new_cpanel(
            k.req("baseurl")?,
            k.req("username")?,
            k.req("token")?,
            TIMEOUT
        ),
        types = types::NO_TLSA
    ),
    provider!(
        "lightsail",
        [],
        [
            ("accesskeyid", REQUIRED, PLAIN, "AWS access key id"),
            ("secretaccesskey", REQUIRED, SECRET, "AWS secret access key"),
            ("sessiontoken", OPTIONAL, SECRET, "session token"),
            ("region", OPTIONAL, PLAIN, "region"),
            ("domain", OPTIONAL, PLAIN, "the Lightsail domain"),
        ],
        |k| DnsUpdater::new_lightsail(providers::lightsail::LightsailConfig {
            access_key_id: k.req("accesskeyid")?,
            secret_access_key: k.req("secretaccesskey")?,
            session_token: k.opt("sessiontoken"),
            region: k.opt("region"),
            domain: k.opt("domain"),
            request_timeout: TIMEOUT
        }),
        types = types::NO_TLSA_CAA
    ),
    provider!(
        "edgedns",
        ["akamai"],
        [
            ("host", REQUIRED, PLAIN, "API host"),
            ("clienttoken", REQUIRED, SECRET, "client token"),
            ("clientsecret", REQUIRED, SECRET, "client secret"),
            ("accesstoken", REQUIRED, SECRET, "access token"),
            ("accountswitchkey", OPTIONAL, PLAIN, "account switch key"),
        ],
        |k| DnsUpdater::new_edgedns(providers::edgedns::EdgeDnsConfig {
            host: k.req("host")?,
            client_token: k.req("clienttoken")?,
            client_secret: k.req("clientsecret")?,
            access_token: k.req("accesstoken")?,
            account_switch_key: k.opt("accountswitchkey"),
            request_timeout: TIMEOUT
        }),
        types = types::NO_TLSA
    ),
    provider!(
        "ultradns",
        [],
        [
            ("username", REQUIRED, PLAIN, "user"),
            ("password", REQUIRED, SECRET, "its password"),
            ("endpoint", OPTIONAL, PLAIN, "API endpoint URL"),
        ],
        |k| DnsUpdater::new_ultradns(
            k.req("username")?,
            k.req("password")?,
            k.opt("endpoint"),
            TIMEOUT
        )
    ),
    provider!(
        "infoblox",
        [],
        [
            ("host", REQUIRED, PLAIN, "grid master host"),
            ("port", OPTIONAL, PLAIN, "port"),
            ("username", REQUIRED, PLAIN, "user"),
            ("password", REQUIRED, SECRET, "its password"),
            ("wapiversion", OPTIONAL, PLAIN, "WAPI version"),
            ("dnsview", OPTIONAL, PLAIN, "DNS view"),
        ],
        |k| DnsUpdater::new_infoblox(providers::infoblox::InfobloxConfig {
            host: k.req("host")?,
            port: k.opt("port"),
            username: k.req("username")?,
            password: k.req("password")?,
            wapi_version: k.opt("wapiversion"),
            dns_view: k.opt("dnsview"),
            request_timeout: TIMEOUT
        }),
        types = types::NO_NS
    ),
    provider!(
        "zoneeu",
        [],
        [
            ("username", REQUIRED, PLAIN, "ZoneID user"),
            ("apikey", REQUIRED, SECRET, "API key"),
        ],
        |k| DnsUpdater::new_zoneeu(k.req("username")?, k.req("apikey")?, TIMEOUT)
    ),
];

/// `endpoint` of OVH.
fn ovh_endpoint(k: &Keys<'_>) -> Result<providers::ovh::OvhEndpoint, KeyError> {
    let text = k.opt("endpoint").unwrap_or_else(|| "ovh-eu".into());
    text.parse()
        .map_err(|_| KeyError::new("endpoint", format!("\"{text}\" is not an OVH endpoint (ovh-eu, ovh-us, ovh-ca, kimsufi-eu, kimsufi-ca, soyoustart-eu, soyoustart-ca)")))
}

/// Joker: an API key, or user name and password.
fn joker_auth(k: &Keys<'_>) -> Result<providers::joker::JokerAuth, KeyError> {
    match (k.opt("apikey"), k.opt("username"), k.opt("password")) {
        (Some(key), _, _) => Ok(providers::joker::JokerAuth::ApiKey(key)),
        (None, Some(username), Some(password)) => {
            Ok(providers::joker::JokerAuth::UsernamePassword { username, password })
        }
        _ => Err(KeyError::new(
            "apikey",
            "missing: joker needs apikey, or username and password",
        )),
    }
}

/// The README's table of these providers and their keys (a unit test keeps the
/// README equal to it).
#[cfg(test)]
pub(crate) fn markdown_table() -> String {
    let mut text = String::from(
        "| handler | required keys | optional keys | cannot write |\n| --- | --- | --- | --- |\n",
    );
    for spec in SPECS {
        let key = |k: &KeySpec| {
            if k.secret {
                format!("`{}` (secret)", k.name)
            } else {
                format!("`{}`", k.name)
            }
        };
        let list = |required: bool| {
            spec.keys
                .iter()
                .filter(|k| k.required == required)
                .map(key)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut name = format!("`{}`", spec.name);
        for alias in spec.aliases {
            name.push_str(&format!(" (or `{alias}`)"));
        }
        let missing: Vec<String> = types::ALL
            .iter()
            .filter(|t| !spec.capabilities.types.contains(t))
            .map(ToString::to_string)
            .collect();
        let missing = if missing.len() == types::ALL.len() {
            "any record (see below)".to_string()
        } else {
            missing.join(", ")
        };
        text.push_str(&format!(
            "| {name} | {} | {} | {missing} |\n",
            list(true),
            list(false)
        ));
    }
    text
}
