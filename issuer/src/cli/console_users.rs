//! `user`: the console's users. No role is checked here: whoever runs the
//! CLI holds the store file, and with it every power an admin has.

use super::*;

use users::Role;

/// The password on stdin: the first line, without its line break.
fn read_password() -> Result<String> {
    let mut line = String::new();
    io::stdin()
        .lock()
        .take(users::MAX_PASSWORD_CHARS as u64 * 4 + 2)
        .read_to_string(&mut line)
        .context("cannot read the password from stdin")?;
    Ok(line.lines().next().unwrap_or_default().to_owned())
}

pub(super) fn user_add(
    paths: &StorePaths,
    json: bool,
    name: &str,
    role: &str,
    now: i64,
) -> Result<Outcome> {
    let role: Role = role.parse()?;
    let mut store = setup::open_store(paths)?;
    let password = read_password()?;
    let user = users::add(&mut store, &Actor::cli(), name, &password, role, now)?;
    let stdout = result(json, "", &user)?;
    Ok(Outcome::new(stdout).note(format!(
        "created console user {} with role {}; they log in at the `ren3-issuer serve` address",
        user.name, user.role
    )))
}

pub(super) fn user_role(
    paths: &StorePaths,
    json: bool,
    name: &str,
    role: &str,
    now: i64,
) -> Result<Outcome> {
    let role: Role = role.parse()?;
    let mut store = setup::open_store(paths)?;
    users::set_role(&mut store, &Actor::cli(), name, role, now)?;
    let stdout = result(json, "", &json!({ "name": name, "role": role }))?;
    Ok(Outcome::new(stdout).note(format!(
        "console user {name} now has role {role}, from their next request"
    )))
}

pub(super) fn user_passwd(paths: &StorePaths, json: bool, name: &str, now: i64) -> Result<Outcome> {
    let mut store = setup::open_store(paths)?;
    let password = read_password()?;
    users::set_password(&mut store, &Actor::cli(), name, &password, now)?;
    let stdout = result(json, "", &json!({ "name": name, "passwordChanged": true }))?;
    Ok(Outcome::new(stdout).note(format!(
        "replaced the password of console user {name} and ended their sessions"
    )))
}

pub(super) fn user_remove(paths: &StorePaths, json: bool, name: &str, now: i64) -> Result<Outcome> {
    let mut store = setup::open_store(paths)?;
    users::remove(&mut store, &Actor::cli(), name, now)?;
    let stdout = result(json, "", &json!({ "removed": name }))?;
    Ok(Outcome::new(stdout).note(format!(
        "removed console user {name} and ended their sessions"
    )))
}

pub(super) fn user_list(paths: &StorePaths, json: bool) -> Result<Outcome> {
    let store = setup::open_store(paths)?;
    let all = users::list(&store)?;
    let mut table = Table::new(["NAME", "ROLE", "CREATED"]);
    for user in &all {
        let role = if user.role_from_migration {
            format!("{} (from the upgrade; set it with `user role`)", user.role)
        } else {
            user.role.to_string()
        };
        table.row([user.name.clone(), role, timestamp::format(user.created_at)]);
    }
    let outcome = Outcome::new(result(json, &table.render(), &json!({ "users": all }))?);
    Ok(if all.is_empty() {
        outcome.note("no console users yet; add one with `ren3-issuer user add NAME --role ROLE`")
    } else {
        outcome
    })
}
