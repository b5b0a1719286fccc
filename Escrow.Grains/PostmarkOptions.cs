namespace Escrow.Grains;

/// <summary>Postmark (section "Postmark"). No ServerToken means the sandbox.</summary>
public sealed class PostmarkOptions
{
    public const string Section = "Postmark";

    public string? ServerToken { get; set; }

    public string? InboundUsername { get; set; }

    public string? InboundPassword { get; set; }

    public string InboundDomain { get; set; } = "reply.escrow.localhost";

    public string FromAddress { get; set; } = "Escrow <noreply@escrow.localhost>";

    public string ApiBase { get; set; } = "https://api.postmarkapp.com";

    public int InboundMaxBytes { get; set; } = 1_048_576;

    /// <summary>
    /// Refuse a reply whose DMARC failed, or whose SPF failed without a DKIM pass for its From domain (the receiving
    /// server's verdicts in the inbound headers). Null means: true in live mode, false with the Stripe sandbox.
    /// </summary>
    public bool? RequireAuthenticatedReplies { get; set; }
}

public sealed class PostmarkOptionsValidator : IValidateOptions<PostmarkOptions>
{
    public ValidateOptionsResult Validate(string? name, PostmarkOptions o) => new OptionsErrors()
        .If(string.IsNullOrWhiteSpace(o.ServerToken),
            "Postmark:ServerToken is missing: set Postmark__ServerToken, or leave Postmark unconfigured in Escrow.Api to use the sandbox.")
        .If(string.IsNullOrWhiteSpace(o.InboundUsername) || string.IsNullOrWhiteSpace(o.InboundPassword),
            "Postmark:InboundUsername and Postmark:InboundPassword protect the inbound webhook: "
            + "set Postmark__InboundUsername and Postmark__InboundPassword.")
        .If(string.IsNullOrWhiteSpace(o.InboundDomain) || o.InboundDomain.Contains('@', StringComparison.Ordinal),
            "Postmark:InboundDomain must be the inbound domain alone, e.g. reply.example.com.")
        .If(o.InboundMaxBytes < 1024, "Postmark:InboundMaxBytes must be at least 1024.")
        .Result();
}
