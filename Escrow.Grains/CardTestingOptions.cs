namespace Escrow.Grains;

/// <summary>The card-testing guard (section "RateLimits", beside the per-address request limits).</summary>
public sealed class CardTestingOptions
{
    public const string Section = "RateLimits";

    /// <summary>Declined cards in an hour after which a client address or sender e-mail is refused for an hour.</summary>
    public int DeclinesPerClientMax { get; set; } = 3;

    /// <summary>More declines than this across the service in ten minutes raise card_testing_suspected.</summary>
    public int DeclinesPerWindowAlert { get; set; } = 20;
}

public sealed class CardTestingOptionsValidator : IValidateOptions<CardTestingOptions>
{
    public ValidateOptionsResult Validate(string? name, CardTestingOptions o) => new OptionsErrors()
        .If(o.DeclinesPerClientMax is < 1 or > Domain.CardTesting.DeclinesKeptMax,
            $"RateLimits:DeclinesPerClientMax must be 1..{Domain.CardTesting.DeclinesKeptMax} (default 3).")
        .If(o.DeclinesPerWindowAlert is < 1 or >= Domain.CardTesting.DeclinesKeptMax,
            $"RateLimits:DeclinesPerWindowAlert must be 1..{Domain.CardTesting.DeclinesKeptMax - 1} (default 20).")
        .Result();
}
