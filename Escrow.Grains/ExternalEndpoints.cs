namespace Escrow.Grains;

/// <summary>
/// Where Stripe and Postmark are. Read when a call is made, not at start-up, because the sandbox lives in the
/// API process and its address is known only once the server listens.
/// </summary>
public interface IExternalEndpoints
{
    /// <summary>Null means Stripe's own API.</summary>
    string? StripeApiBase { get; }

    string PostmarkApiBase { get; }
}

public sealed class ConfiguredEndpoints(Microsoft.Extensions.Options.IOptions<StripeOptions> stripe, Microsoft.Extensions.Options.IOptions<PostmarkOptions> postmark) : IExternalEndpoints
{
    public string? StripeApiBase => stripe.Value.ApiBase;

    public string PostmarkApiBase => postmark.Value.ApiBase;
}
