//! Input checks shared by the handlers; each names the field to fix.

use crate::Error;

/// A name: 1 to 256 characters, no control characters, no leading or trailing space.
pub fn name(field: &str, value: &str) -> Result<(), Error> {
    if value.trim().is_empty() {
        return Err(Error::invalid(field, format!("{field} must not be empty")));
    }
    if value.chars().count() > 256 {
        return Err(Error::invalid(field, format!("{field} must be at most 256 characters")));
    }
    if value.chars().any(char::is_control) || value.trim() != value {
        return Err(Error::invalid(
            field,
            format!("{field} must not contain control characters or surrounding spaces"),
        ));
    }
    Ok(())
}

/// Free text: at most `max` characters.
pub fn text(field: &str, value: &str, max: usize) -> Result<(), Error> {
    if value.chars().count() > max {
        return Err(Error::invalid(field, format!("{field} must be at most {max} characters")));
    }
    if value.contains('\0') {
        return Err(Error::invalid(field, format!("{field} must not contain NUL characters")));
    }
    Ok(())
}
