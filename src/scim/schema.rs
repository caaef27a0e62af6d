//! The SCIM schema as one static table (RFC 7643 §4, §7, §8.7): every attribute the appliance
//! knows, with type, mutability, returned, caseExact and uniqueness.
//!
//! Discovery (`/Schemas`), body validation, projection, filter resolution and PATCH all read this
//! table, so adding an attribute is one row here. Lookups are case-insensitive because SCIM
//! attribute names are (RFC 7643 §2.1) and Entra sends `DisplayName`, `Manager` etc.

pub const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const ENTERPRISE_USER: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub const GROUPTALK_USER: &str = "urn:ietf:params:scim:schemas:extension:grouptalk:2.0:User";
pub const GROUPTALK_GROUP: &str = "urn:ietf:params:scim:schemas:extension:grouptalk:2.0:Group";
pub const LIST_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
pub const SEARCH_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrType {
    String,
    Boolean,
    Decimal,
    Integer,
    DateTime,
    Binary,
    Reference,
    Complex,
}

impl AttrType {
    pub fn as_str(self) -> &'static str {
        match self {
            AttrType::String => "string",
            AttrType::Boolean => "boolean",
            AttrType::Decimal => "decimal",
            AttrType::Integer => "integer",
            AttrType::DateTime => "dateTime",
            AttrType::Binary => "binary",
            AttrType::Reference => "reference",
            AttrType::Complex => "complex",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutability {
    ReadOnly,
    ReadWrite,
    Immutable,
    WriteOnly,
}

impl Mutability {
    pub fn as_str(self) -> &'static str {
        match self {
            Mutability::ReadOnly => "readOnly",
            Mutability::ReadWrite => "readWrite",
            Mutability::Immutable => "immutable",
            Mutability::WriteOnly => "writeOnly",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returned {
    Always,
    Never,
    Default,
    Request,
}

impl Returned {
    pub fn as_str(self) -> &'static str {
        match self {
            Returned::Always => "always",
            Returned::Never => "never",
            Returned::Default => "default",
            Returned::Request => "request",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uniqueness {
    None,
    Server,
    Global,
}

impl Uniqueness {
    pub fn as_str(self) -> &'static str {
        match self {
            Uniqueness::None => "none",
            Uniqueness::Server => "server",
            Uniqueness::Global => "global",
        }
    }
}

/// One attribute definition (RFC 7643 §7).
#[derive(Debug, Clone, Copy)]
pub struct Attribute {
    pub name: &'static str,
    pub ty: AttrType,
    pub multi_valued: bool,
    pub required: bool,
    pub case_exact: bool,
    pub mutability: Mutability,
    pub returned: Returned,
    pub uniqueness: Uniqueness,
    pub canonical_values: &'static [&'static str],
    pub reference_types: &'static [&'static str],
    pub sub_attributes: &'static [Attribute],
    pub description: &'static str,
}

impl Attribute {
    const fn of(name: &'static str, ty: AttrType, description: &'static str) -> Self {
        Attribute {
            name,
            ty,
            multi_valued: false,
            required: false,
            case_exact: false,
            mutability: Mutability::ReadWrite,
            returned: Returned::Default,
            uniqueness: Uniqueness::None,
            canonical_values: &[],
            reference_types: &[],
            sub_attributes: &[],
            description,
        }
    }
    const fn string(name: &'static str, description: &'static str) -> Self {
        Self::of(name, AttrType::String, description)
    }
    const fn boolean(name: &'static str, description: &'static str) -> Self {
        Self::of(name, AttrType::Boolean, description)
    }
    const fn reference(
        name: &'static str,
        types: &'static [&'static str],
        description: &'static str,
    ) -> Self {
        let mut a = Self::of(name, AttrType::Reference, description);
        a.reference_types = types;
        a
    }
    const fn complex(
        name: &'static str,
        subs: &'static [Attribute],
        description: &'static str,
    ) -> Self {
        let mut a = Self::of(name, AttrType::Complex, description);
        a.sub_attributes = subs;
        a
    }
    const fn multi(mut self) -> Self {
        self.multi_valued = true;
        self
    }
    const fn required(mut self) -> Self {
        self.required = true;
        self
    }
    const fn case_exact(mut self) -> Self {
        self.case_exact = true;
        self
    }
    const fn read_only(mut self) -> Self {
        self.mutability = Mutability::ReadOnly;
        self
    }
    const fn immutable(mut self) -> Self {
        self.mutability = Mutability::Immutable;
        self
    }
    const fn write_only(mut self) -> Self {
        self.mutability = Mutability::WriteOnly;
        self.returned = Returned::Never;
        self
    }
    const fn always(mut self) -> Self {
        self.returned = Returned::Always;
        self
    }
    const fn unique(mut self) -> Self {
        self.uniqueness = Uniqueness::Server;
        self
    }
    const fn canonical(mut self, values: &'static [&'static str]) -> Self {
        self.canonical_values = values;
        self
    }

    /// Case-insensitive lookup of a sub-attribute.
    pub fn sub(&self, name: &str) -> Option<&'static Attribute> {
        find(self.sub_attributes, name)
    }
}

/// Case-insensitive lookup in a list of attributes.
pub fn find(attrs: &'static [Attribute], name: &str) -> Option<&'static Attribute> {
    attrs.iter().find(|a| a.name.eq_ignore_ascii_case(name))
}

/// One schema (RFC 7643 §7): the core schemas and the extensions.
#[derive(Debug)]
pub struct Schema {
    pub id: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub attributes: &'static [Attribute],
}

/// The kind of resource an endpoint serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceKind {
    User,
    Group,
}

/// A resource type (RFC 7643 §6): its core schema and the extensions it may carry.
#[derive(Debug)]
pub struct ResourceType {
    pub kind: ResourceKind,
    pub name: &'static str,
    pub endpoint: &'static str,
    pub description: &'static str,
    pub schema: &'static Schema,
    pub extensions: &'static [&'static Schema],
}

impl ResourceType {
    /// The core schema followed by the extensions, in a fixed order.
    pub fn schemas(&self) -> impl Iterator<Item = &'static Schema> {
        std::iter::once(self.schema).chain(self.extensions.iter().copied())
    }

    /// The extension schema with this URN (case-insensitive), if this type has it.
    pub fn extension(&self, urn: &str) -> Option<&'static Schema> {
        self.extensions
            .iter()
            .copied()
            .find(|s| s.id.eq_ignore_ascii_case(urn))
    }
}

/// `value`, `display`, `type`, `primary`: the shape RFC 7643 §2.4 gives multi-valued attributes.
macro_rules! multi_valued_subs {
    ($value_desc:expr, $types:expr) => {
        &[
            Attribute::string("value", $value_desc),
            Attribute::string(
                "display",
                "A human-readable name, primarily used for display purposes.",
            ),
            Attribute::string("type", "A label indicating the attribute's function.")
                .canonical($types),
            Attribute::boolean("primary", "Whether this is the primary or preferred value."),
        ]
    };
}

/// Attributes every resource has (RFC 7643 §3.1). `id` and `meta` are server-owned.
pub static COMMON_ATTRIBUTES: &[Attribute] = &[
    Attribute::string(
        "id",
        "Unique identifier for the resource, assigned by the service provider.",
    )
    .case_exact()
    .read_only()
    .always()
    .unique(),
    Attribute::string(
        "externalId",
        "Identifier of the resource as defined by the provisioning client.",
    )
    .case_exact(),
    Attribute::complex(
        "meta",
        &[
            Attribute::string("resourceType", "The name of the resource type.")
                .case_exact()
                .read_only(),
            Attribute::of(
                "created",
                AttrType::DateTime,
                "When the resource was added.",
            )
            .read_only(),
            Attribute::of(
                "lastModified",
                AttrType::DateTime,
                "When the resource was last changed.",
            )
            .read_only(),
            Attribute::reference("location", &["uri"], "The URI of the resource.")
                .case_exact()
                .read_only(),
            Attribute::string("version", "The version (weak ETag) of the resource.")
                .case_exact()
                .read_only(),
        ],
        "Resource metadata.",
    )
    .read_only(),
];

static NAME_SUBS: &[Attribute] = &[
    Attribute::string("formatted", "The full name, formatted for display."),
    Attribute::string("familyName", "The family name."),
    Attribute::string("givenName", "The given name."),
    Attribute::string("middleName", "The middle name(s)."),
    Attribute::string("honorificPrefix", "The honorific prefix(es)."),
    Attribute::string("honorificSuffix", "The honorific suffix(es)."),
];

static ADDRESS_SUBS: &[Attribute] = &[
    Attribute::string("formatted", "The full mailing address."),
    Attribute::string("streetAddress", "The street address."),
    Attribute::string("locality", "The city or locality."),
    Attribute::string("region", "The state or region."),
    Attribute::string("postalCode", "The zip or postal code."),
    Attribute::string("country", "The country name (ISO 3166-1 alpha-2)."),
    Attribute::string("type", "A label indicating the address's function.")
        .canonical(&["work", "home", "other"]),
    Attribute::boolean("primary", "Whether this is the primary address."),
];

static GROUP_REF_SUBS: &[Attribute] = &[
    Attribute::string("value", "The id of the group.").read_only(),
    Attribute::reference("$ref", &["User", "Group"], "The URI of the group.").read_only(),
    Attribute::string("display", "The group's display name.").read_only(),
    Attribute::string("type", "direct or indirect membership.")
        .canonical(&["direct", "indirect"])
        .read_only(),
];

pub static USER_SCHEMA: Schema = Schema {
    id: USER,
    name: "User",
    description: "User Account",
    attributes: &[
        Attribute::string("userName", "Unique identifier for the user, typically the sign-in name. Unique per tenant, compared case-insensitively.")
            .required()
            .unique(),
        Attribute::complex("name", NAME_SUBS, "The components of the user's name."),
        Attribute::string("displayName", "The name of the user, suitable for display."),
        Attribute::string("nickName", "The casual way to address the user."),
        Attribute::reference("profileUrl", &["external"], "A URI to the user's online profile."),
        Attribute::string("title", "The user's title."),
        Attribute::string("userType", "The relationship between the organization and the user."),
        Attribute::string("preferredLanguage", "The user's preferred written or spoken language."),
        Attribute::string("locale", "The user's default location for localization."),
        Attribute::string("timezone", "The user's time zone."),
        Attribute::boolean("active", "The user's administrative status. Inactive users are kept, with their group memberships."),
        Attribute::string("password", "The user's cleartext password. Accepted and never stored or returned.").write_only(),
        Attribute::complex("emails", multi_valued_subs!("Email address for the user.", &["work", "home", "other"]), "Email addresses for the user.").multi(),
        Attribute::complex("phoneNumbers", multi_valued_subs!("Phone number for the user, stored exactly as sent.", &["work", "home", "mobile", "fax", "pager", "other"]), "Phone numbers for the user.").multi(),
        Attribute::complex("ims", multi_valued_subs!("Instant messaging address for the user.", &["aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"]), "Instant messaging addresses for the user.").multi(),
        Attribute::complex("photos", &[
            Attribute::reference("value", &["external"], "URL of a photo of the user."),
            Attribute::string("display", "A human-readable name, primarily used for display purposes."),
            Attribute::string("type", "A label indicating the attribute's function.").canonical(&["photo", "thumbnail"]),
            Attribute::boolean("primary", "Whether this is the primary photo."),
        ], "URLs of photos of the user.").multi(),
        Attribute::complex("addresses", ADDRESS_SUBS, "Physical mailing addresses for the user.").multi(),
        Attribute::complex("groups", GROUP_REF_SUBS, "The groups the user belongs to, maintained by the service provider.").multi().read_only(),
        Attribute::complex("entitlements", multi_valued_subs!("The value of an entitlement.", &[]), "Entitlements of the user.").multi(),
        Attribute::complex("roles", multi_valued_subs!("The value of a role.", &[]), "Roles of the user.").multi(),
        Attribute::complex("x509Certificates", &[
            Attribute::of("value", AttrType::Binary, "The value of an X.509 certificate."),
            Attribute::string("display", "A human-readable name, primarily used for display purposes."),
            Attribute::string("type", "A label indicating the attribute's function."),
            Attribute::boolean("primary", "Whether this is the primary certificate."),
        ], "X.509 certificates of the user.").multi(),
    ],
};

pub static ENTERPRISE_USER_SCHEMA: Schema = Schema {
    id: ENTERPRISE_USER,
    name: "EnterpriseUser",
    description: "Enterprise User",
    attributes: &[
        Attribute::string(
            "employeeNumber",
            "Numeric or alphanumeric identifier assigned to a person.",
        ),
        Attribute::string("costCenter", "Identifies the name of a cost center."),
        Attribute::string("organization", "Identifies the name of an organization."),
        Attribute::string("division", "Identifies the name of a division."),
        Attribute::string("department", "Identifies the name of a department."),
        Attribute::complex(
            "manager",
            &[
                Attribute::string(
                    "value",
                    "The id of the SCIM resource representing the user's manager.",
                ),
                Attribute::reference(
                    "$ref",
                    &["User"],
                    "The URI of the SCIM resource representing the user's manager.",
                ),
                Attribute::string("displayName", "The displayName of the user's manager.")
                    .read_only(),
            ],
            "The user's manager.",
        ),
    ],
};

pub static GROUPTALK_USER_SCHEMA: Schema = Schema {
    id: GROUPTALK_USER,
    name: "GroupTalkUser",
    description: "GroupTalk user labels",
    attributes: &[
        Attribute::string("label1", "GroupTalk label 1."),
        Attribute::string("label2", "GroupTalk label 2."),
        Attribute::string("label3", "GroupTalk label 3."),
        Attribute::string("label4", "GroupTalk label 4."),
        Attribute::string("label5", "GroupTalk label 5."),
    ],
};

pub static GROUP_SCHEMA: Schema = Schema {
    id: GROUP,
    name: "Group",
    description: "Group",
    attributes: &[
        Attribute::string(
            "displayName",
            "A human-readable name for the group. Unique per tenant, compared case-insensitively.",
        )
        .required()
        .unique(),
        Attribute::complex(
            "members",
            &[
                Attribute::string(
                    "value",
                    "The id of a member: a user or a group of the same tenant.",
                )
                .immutable(),
                Attribute::reference("$ref", &["User", "Group"], "The URI of the member.")
                    .immutable(),
                Attribute::string("type", "The type of the member.")
                    .canonical(&["User", "Group"])
                    .immutable(),
                Attribute::string("display", "The member's display name.").read_only(),
            ],
            "A list of members of the group.",
        )
        .multi(),
    ],
};

pub static GROUPTALK_GROUP_SCHEMA: Schema = Schema {
    id: GROUPTALK_GROUP,
    name: "GroupTalkGroup",
    description: "GroupTalk group attributes",
    attributes: &[Attribute::string(
        "description",
        "A description of the group.",
    )],
};

pub static USER_TYPE: ResourceType = ResourceType {
    kind: ResourceKind::User,
    name: "User",
    endpoint: "/Users",
    description: "User Account",
    schema: &USER_SCHEMA,
    extensions: &[&ENTERPRISE_USER_SCHEMA, &GROUPTALK_USER_SCHEMA],
};

pub static GROUP_TYPE: ResourceType = ResourceType {
    kind: ResourceKind::Group,
    name: "Group",
    endpoint: "/Groups",
    description: "Group",
    schema: &GROUP_SCHEMA,
    extensions: &[&GROUPTALK_GROUP_SCHEMA],
};

pub static RESOURCE_TYPES: [&ResourceType; 2] = [&USER_TYPE, &GROUP_TYPE];

pub static SCHEMAS: [&Schema; 5] = [
    &USER_SCHEMA,
    &ENTERPRISE_USER_SCHEMA,
    &GROUPTALK_USER_SCHEMA,
    &GROUP_SCHEMA,
    &GROUPTALK_GROUP_SCHEMA,
];

impl ResourceKind {
    pub fn resource_type(self) -> &'static ResourceType {
        match self {
            ResourceKind::User => &USER_TYPE,
            ResourceKind::Group => &GROUP_TYPE,
        }
    }
    pub fn name(self) -> &'static str {
        self.resource_type().name
    }
}

/// Where an attribute lives: at the top of the document (core) or inside an extension object.
#[derive(Debug, Clone, Copy)]
pub struct Resolved {
    /// `None` for core and common attributes, `Some(urn)` for extension attributes.
    pub extension: Option<&'static Schema>,
    pub attr: &'static Attribute,
    pub sub: Option<&'static Attribute>,
}

impl Resolved {
    /// The definition the path finally points at (the sub-attribute if there is one).
    pub fn target(&self) -> &'static Attribute {
        self.sub.unwrap_or(self.attr)
    }
}

/// Resolve an attribute name (already split from any URN and sub-attribute) for a resource type.
///
/// `urn` is the schema URN written before the name, if any. Without a URN the core and common
/// attributes are searched first, then the extensions, so `costCenter` alone also works.
pub fn resolve(
    rt: &'static ResourceType,
    urn: Option<&str>,
    name: &str,
    sub: Option<&str>,
) -> Option<Resolved> {
    let (extension, attr) = match urn {
        Some(urn) if urn.eq_ignore_ascii_case(rt.schema.id) => (
            None,
            find(rt.schema.attributes, name).or_else(|| find(COMMON_ATTRIBUTES, name))?,
        ),
        Some(urn) => {
            let ext = rt.extension(urn)?;
            (Some(ext), find(ext.attributes, name)?)
        }
        None => match find(rt.schema.attributes, name).or_else(|| find(COMMON_ATTRIBUTES, name)) {
            Some(a) => (None, a),
            None => rt
                .extensions
                .iter()
                .find_map(|ext| find(ext.attributes, name).map(|a| (Some(*ext), a)))?,
        },
    };
    let sub = match sub {
        Some(s) => Some(attr.sub(s)?),
        None => None,
    };
    Some(Resolved {
        extension,
        attr,
        sub,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_ignore_case() {
        let r = resolve(&USER_TYPE, None, "USERNAME", None).map(|r| r.attr.name);
        assert_eq!(r, Some("userName"));
        let r = resolve(&USER_TYPE, Some(ENTERPRISE_USER), "Manager", Some("VALUE"));
        assert_eq!(r.and_then(|r| r.sub).map(|s| s.name), Some("value"));
    }

    #[test]
    fn unqualified_extension_attribute_resolves_to_its_extension() {
        let r = resolve(&USER_TYPE, None, "label3", None);
        assert_eq!(
            r.and_then(|r| r.extension).map(|s| s.id),
            Some(GROUPTALK_USER)
        );
    }

    #[test]
    fn every_seed_user_attribute_is_known() {
        for (urn, name, sub) in [
            (None, "userName", None),
            (None, "phoneNumbers", Some("value")),
            (None, "emails", Some("value")),
            (None, "active", None),
            (None, "name", Some("givenName")),
            (None, "name", Some("familyName")),
            (None, "externalId", None),
            (Some(ENTERPRISE_USER), "costCenter", None),
            (Some(ENTERPRISE_USER), "organization", None),
            (Some(GROUPTALK_USER), "label1", None),
            (Some(GROUPTALK_USER), "label5", None),
        ] {
            assert!(resolve(&USER_TYPE, urn, name, sub).is_some(), "{name}");
        }
        for (urn, name) in [
            (None, "displayName"),
            (None, "members"),
            (None, "externalId"),
            (Some(GROUPTALK_GROUP), "description"),
        ] {
            assert!(resolve(&GROUP_TYPE, urn, name, None).is_some(), "{name}");
        }
    }

    #[test]
    fn unknown_names_do_not_resolve() {
        assert!(resolve(&USER_TYPE, None, "adreses", None).is_none());
        assert!(resolve(&GROUP_TYPE, Some(ENTERPRISE_USER), "costCenter", None).is_none());
    }
}
