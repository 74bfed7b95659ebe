//! `user`: the console's users.

use super::*;

pub(super) fn user_add(paths: &StorePaths, json: bool, name: &str, now: i64) -> Result<Outcome> {
    let mut store = setup::open_store(paths)?;
    let mut line = String::new();
    io::stdin()
        .lock()
        .take(users::MAX_PASSWORD_CHARS as u64 * 4 + 2)
        .read_to_string(&mut line)
        .context("cannot read the password from stdin")?;
    // One line: the password is what comes before the first line break.
    let password = line.lines().next().unwrap_or_default();
    let user = users::add(&mut store, &Actor::cli(), name, password, now)?;
    let stdout = result(json, "", &user)?;
    Ok(Outcome::new(stdout).note(format!(
        "created console user {}; they log in at the `ren3-issuer serve` address",
        user.name
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
    let mut table = Table::new(["NAME", "CREATED"]);
    for user in &all {
        table.row([user.name.clone(), timestamp::format(user.created_at)]);
    }
    let outcome = Outcome::new(result(json, &table.render(), &json!({ "users": all }))?);
    Ok(if all.is_empty() {
        outcome.note("no console users yet; add one with `ren3-issuer user add NAME`")
    } else {
        outcome
    })
}
