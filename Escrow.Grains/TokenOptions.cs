namespace Escrow.Grains;

/// <summary>The secrets access and reply tokens are derived with (Tokens:Secrets:0, 1, ...).</summary>
public sealed class TokenOptions
{
    public const string Section = "Tokens";

    /// <summary>
    /// The first signs new tokens; every one listed can derive again the tokens it signed (for a reminder's reply
    /// address, a receipt's status link, a retried create's answer). Rotate by putting a new secret first and keeping
    /// the old one while escrows made with it may still send e-mails (see docs/SECURITY.md).
    /// </summary>
    public List<string> Secrets { get; set; } = [];
}

public sealed class TokenOptionsValidator : IValidateOptions<TokenOptions>
{
    public ValidateOptionsResult Validate(string? name, TokenOptions o) => new OptionsErrors()
        .If(o.Secrets.All(string.IsNullOrWhiteSpace),
            "Tokens:Secrets: no secret configured; set Tokens__Secrets__0 to a random value of at least 24 characters (it signs access "
                + "and reply tokens).")
        .Result();
}
