namespace Escrow.Grains;

/// <summary>The service's own public address and its signed onboarding links (section "Api").</summary>
public sealed class PublicLinkOptions
{
    public const string Section = "Api";

    /// <summary>Where the public routes are, e.g. https://escrow.example.com. Links are built from it, never from a Host header.</summary>
    public string? PublicBaseUrl { get; set; }

    /// <summary>
    /// The HMAC key of onboarding tokens. Unset: derived from the first <c>Stripe:WebhookSecret</c> (then rolling that
    /// secret ends the links already e-mailed). Every process of a cluster must have the same.
    /// </summary>
    public string? OnboardingTokenSecret { get; set; }

    /// <summary>How long an e-mailed onboarding link keeps working.</summary>
    public TimeSpan OnboardingLinkLifetime { get; set; } = TimeSpan.FromDays(14);
}

public sealed class PublicLinkOptionsValidator : IValidateOptions<PublicLinkOptions>
{
    public ValidateOptionsResult Validate(string? name, PublicLinkOptions o) => new OptionsErrors()
        .If(o.PublicBaseUrl is not null && !(Uri.TryCreate(o.PublicBaseUrl, UriKind.Absolute, out var u) && u.Scheme is "http" or "https"),
            "Api:PublicBaseUrl must be an absolute http(s) URL, e.g. https://escrow.example.com (the links in e-mails start with it).")
        .If(o.OnboardingLinkLifetime <= TimeSpan.Zero, "Api:OnboardingLinkLifetime must be positive (default P14D).")
        .Result();
}
