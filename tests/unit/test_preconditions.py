"""Reading a database user's privileges for the restore proof's way (backup/preconditions.py): grant patterns
matched as MariaDB matches them, only the account's own grants (and its roles') counted."""

from wpgate.backup.preconditions import Grants, like_pattern

ME = "'wp_shop'@'localhost'"


def grants(*rows: str) -> Grants:
    return Grants.parse("\n".join([f"me\t{ME}", *rows]) + "\n")


def test_a_grant_pattern_matches_as_the_server_matches_it():
    pattern = like_pattern("wp\\_shop\\_wpgate\\_%")
    assert pattern.fullmatch("wp_shop_wpgate_verify")
    assert not pattern.fullmatch("wpXshop_wpgate_verify"), "an escaped _ is itself only"
    assert not pattern.fullmatch("wp_shop"), "the pattern is matched whole"
    assert like_pattern("wp_shop").fullmatch("wpXshop"), "an unescaped _ is any one character"
    assert like_pattern("db.%").fullmatch("db.x") and not like_pattern("db.%").fullmatch("dbXx")


def test_the_usual_host_grants_its_own_database_only():
    found = grants(f"global\t{ME}\tUSAGE",
                   *(f"schema\t{ME}\t{privilege}\twp_shop" for privilege in ("SELECT", "INSERT", "CREATE", "DROP")),
                   "database\twp_shop", "table\twp_options", "table\twp_posts")
    assert found.missing("wp_shop_wpgate_verify", ("CREATE", "DROP")) == ["CREATE", "DROP"]
    assert found.missing("wp_shop", ("CREATE", "DROP", "INSERT", "SELECT")) == []
    assert found.databases == {"wp_shop"} and found.tables == ["wp_options", "wp_posts"]


def test_a_wildcard_grant_or_a_global_one_allows_the_scratch_database():
    wildcard = grants(f"schema\t{ME}\tCREATE\twp\\_shop\\_wpgate\\_%", f"schema\t{ME}\tDROP\twp\\_shop\\_wpgate\\_%")
    assert wildcard.missing("wp_shop_wpgate_verify", ("CREATE", "DROP")) == []
    assert grants(f"global\t{ME}\tCREATE", f"global\t{ME}\tDROP").missing("anything", ("CREATE", "DROP")) == []


def test_other_accounts_grants_do_not_count_but_an_enabled_roles_do():
    """An account that may read the grant tables sees everyone's rows in information_schema."""
    other = grants("schema\t'root'@'localhost'\tCREATE\t%", "global\t'admin'@'%'\tCREATE")
    assert other.missing("wp_shop_wpgate_verify", ("CREATE",)) == ["CREATE"]
    role = grants("role\t'deployers'", "schema\t'deployers'\tCREATE\twp\\_shop\\_wpgate\\_%")
    assert role.missing("wp_shop_wpgate_verify", ("CREATE",)) == []
