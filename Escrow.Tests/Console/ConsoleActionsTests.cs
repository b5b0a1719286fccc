using Escrow.Api.Admin;
using Microsoft.AspNetCore.Routing;

namespace Escrow.Tests.Console;

/// <summary>The console and the admin API offer the same operator actions: none in one that the other cannot do.</summary>
[Collection(ConsoleBrowserCollection.Name)]
public sealed class ConsoleActionsTests(ConsoleBrowserFixture fx)
{
    [Fact]
    public void The_console_and_the_admin_api_offer_exactly_the_same_actions()
    {
        var endpoints = fx.Service<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>()
            .Where(e => e.Metadata.GetMetadata<HttpMethodMetadata>()?.HttpMethods.Contains("POST") == true)
            .ToList();
        var admin = endpoints.Where(e => e.RoutePattern.RawText!.StartsWith("/v1/admin", StringComparison.Ordinal)).ToList();
        // Every state-changing admin endpoint names its action; one that does not would escape this comparison.
        Assert.All(admin, e => Assert.True(e.Metadata.GetMetadata<AdminActionMetadata>() is not null, $"{e.RoutePattern.RawText} has no AdminActionMetadata"));
        var console = endpoints.Where(e => e.RoutePattern.RawText!.StartsWith("/console", StringComparison.Ordinal)).ToList();
        var signInOut = new[] { "/console/signin", "/console/signout" };
        Assert.All(console.Where(e => !signInOut.Contains(e.RoutePattern.RawText)),
            e => Assert.True(e.Metadata.GetMetadata<AdminActionMetadata>() is not null, $"{e.RoutePattern.RawText} has no AdminActionMetadata"));

        var adminActions = admin.Select(e => e.Metadata.GetMetadata<AdminActionMetadata>()!.Action).Order().ToList();
        var consoleActions = console.Select(e => e.Metadata.GetMetadata<AdminActionMetadata>()?.Action).OfType<string>().Order().ToList();

        Assert.Equal(adminActions, consoleActions);
        Assert.Contains("escrow.resolve_dispute", consoleActions);
        Assert.Equal(Enum.GetValues<OperatorActionKind>().Length + 4, consoleActions.Count);
    }
}
