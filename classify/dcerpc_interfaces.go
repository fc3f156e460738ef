package classify

import (
	"encoding/binary"
	"encoding/hex"
)

// The one table of DCE/RPC interfaces and DCOM classes that the DCE/RPC
// detector names (protocols.md §1.7–1.9 and §8, plus the common Windows
// interfaces). UUIDs and opnum names were checked against [MS-RPCE],
// [MS-DCOM], [MS-RAI], the per-interface Microsoft specifications, and the
// interface lists of Suricata (rust/src/dcerpc/uuid_service_map.json),
// Zeek (consts.zeek) and impacket.

// rpcUUID is a UUID in its NDR wire form with little-endian integers
// (protocols.md §1.4): Data1, Data2 and Data3 little-endian, the last 8
// bytes as-is. It is a map key, so lookups allocate nothing.
type rpcUUID [16]byte

// ifaceRole marks the interfaces whose calls the detector reads further.
type ifaceRole uint8

const (
	roleNone       ifaceRole = iota
	roleEPM                  // endpoint mapper: ept_map responses announce ports (§1.7)
	roleSCM                  // IRemoteSCMActivator / ISystemActivator (§1.8)
	roleActivation           // IActivation, pre-COM 5.6 activation (§1.8)
	roleOXID                 // IObjectExporter / IOXIDResolver (§1.8)
	roleRA                   // Remote Assistance interfaces ([MS-RAI], §1.9)
)

// rpcInterface is one known interface.
type rpcInterface struct {
	uuid rpcUUID
	name string
	role ifaceRole
	ops  map[uint16]string // opnum names, where known
}

// String forms of the interface table; converted once into rpcInterfaces.
type rpcInterfaceDef struct {
	uuid string
	name string
	role ifaceRole
	ops  map[uint16]string
}

// IUnknown and IDispatch methods as every dual DCOM interface inherits them
// (opnums 0–2 never travel; IRemUnknown replaces them) [MS-DCOM §3.1.1.5.8,
// MS-OAUT §3.1.4].
var dispatchOps = map[uint16]string{
	3: "GetTypeInfoCount", 4: "GetTypeInfo", 5: "GetIDsOfNames", 6: "Invoke",
}

func withDispatch(m map[uint16]string) map[uint16]string {
	out := make(map[uint16]string, len(m)+len(dispatchOps))
	for k, v := range dispatchOps {
		out[k] = v
	}
	for k, v := range m {
		out[k] = v
	}
	return out
}

var rpcInterfaceDefs = []rpcInterfaceDef{
	// Endpoint mapper and management (§1.7, §8; C706 / [MS-RPCE]).
	{"e1af8308-5d1f-11c9-91a4-08002b14a0fa", "epmapper", roleEPM, map[uint16]string{
		0: "ept_insert", 1: "ept_delete", 2: "ept_lookup", 3: "ept_map", 4: "ept_lookup_handle_free",
		5: "ept_inq_object", 6: "ept_mgmt_delete", 7: "ept_map_auth", 8: "ept_map_auth_async"}},
	{"afa8bd80-7d8a-11c9-bef4-08002b102989", "mgmt", roleNone, map[uint16]string{
		0: "inq_if_ids", 1: "inq_stats", 2: "is_server_listening", 3: "stop_server_listening", 4: "inq_princ_name"}},

	// DCOM activation and object resolution ([MS-DCOM] §1.9, §3.1.2.5).
	{"000001a0-0000-0000-c000-000000000046", "ISystemActivator", roleSCM, map[uint16]string{
		3: "RemoteGetClassObject", 4: "RemoteCreateInstance"}},
	{"4d9f4ab8-7d1c-11cf-861e-0020af6e7c57", "IActivation", roleActivation, map[uint16]string{
		0: "RemoteActivation"}},
	{"99fcfec4-5260-101b-bbcb-00aa0021347a", "IOXIDResolver", roleOXID, map[uint16]string{
		0: "ResolveOxid", 1: "SimplePing", 2: "ComplexPing", 3: "ServerAlive", 4: "ResolveOxid2", 5: "ServerAlive2"}},
	{"00000131-0000-0000-c000-000000000046", "IRemUnknown", roleNone, map[uint16]string{
		3: "RemQueryInterface", 4: "RemAddRef", 5: "RemRelease"}},
	{"00000143-0000-0000-c000-000000000046", "IRemUnknown2", roleNone, map[uint16]string{
		3: "RemQueryInterface", 4: "RemAddRef", 5: "RemRelease", 6: "RemQueryInterface2"}},
	{"00000000-0000-0000-c000-000000000046", "IUnknown", roleNone, nil},
	{"00000001-0000-0000-c000-000000000046", "IClassFactory", roleNone, map[uint16]string{
		3: "CreateInstance", 4: "LockServer"}},
	{"00020400-0000-0000-c000-000000000046", "IDispatch", roleNone, dispatchOps},
	{"00020401-0000-0000-c000-000000000046", "ITypeInfo", roleNone, map[uint16]string{
		3: "GetTypeAttr", 4: "GetTypeComp", 5: "GetFuncDesc", 6: "GetVarDesc", 7: "GetNames",
		8: "GetRefTypeOfImplType", 9: "GetImplTypeFlags", 12: "GetDocumentation", 13: "GetDllEntry",
		14: "GetRefTypeInfo", 16: "CreateInstance", 17: "GetMops", 18: "GetContainingTypeLib"}},
	{"00020402-0000-0000-c000-000000000046", "ITypeLib", roleNone, nil},
	{"00020403-0000-0000-c000-000000000046", "ITypeComp", roleNone, nil},
	{"00020404-0000-0000-c000-000000000046", "IEnumVARIANT", roleNone, nil},
	{"00020411-0000-0000-c000-000000000046", "ITypeLib2", roleNone, nil},
	{"00020412-0000-0000-c000-000000000046", "ITypeInfo2", roleNone, nil},
	{"b196b283-bab4-101a-b69c-00aa00341d07", "IProvideClassInfo", roleNone, map[uint16]string{3: "GetClassInfo"}},

	// Remote Assistance ([MS-RAI] §1.9, §3.1.4, §3.3.4; protocols.md §1.9).
	{"f120a684-b926-447f-9df4-c966cb785648", "IRASrv", roleRA, withDispatch(map[uint16]string{
		7: "GetNoviceUserInfo", 8: "GetSessionInfo"})},
	{"833e4200-aff7-4ac3-aac2-9f24c1457bce", "IPCHService", roleRA, withDispatch(map[uint16]string{
		19: "RemoteConnectionParms", 20: "RemoteUserSessionInfo"})},
	{"833e4100-aff7-4ac3-aac2-9f24c1457bce", "IPCHCollection", roleRA, withDispatch(map[uint16]string{
		7: "get__NewEnum", 8: "get_Item", 9: "get_Count"})},
	{"833e41aa-aff7-4ac3-aac2-9f24c1457bce", "ISAFSession", roleRA, withDispatch(map[uint16]string{
		7: "get_SessionID", 8: "put_SessionID", 9: "get_SessionState", 10: "put_SessionState",
		11: "get_DomainName", 12: "put_DomainName", 13: "get_UserName", 14: "put_UserName"})},

	// WMI ([MS-WMI] §3.1.4).
	{"f309ad18-d86a-11d0-a075-00c04fb68820", "IWbemLevel1Login", roleNone, map[uint16]string{
		3: "EstablishPosition", 4: "RequestChallenge", 5: "WBEMLogin", 6: "NTLMLogin"}},
	{"9556dc99-828c-11cf-a37e-00aa003240c7", "IWbemServices", roleNone, map[uint16]string{
		3: "OpenNamespace", 4: "CancelAsyncCall", 5: "QueryObjectSink", 6: "GetObject", 7: "GetObjectAsync",
		8: "PutClass", 9: "PutClassAsync", 10: "DeleteClass", 11: "DeleteClassAsync", 12: "CreateClassEnum",
		13: "CreateClassEnumAsync", 14: "PutInstance", 15: "PutInstanceAsync", 16: "DeleteInstance",
		17: "DeleteInstanceAsync", 18: "CreateInstanceEnum", 19: "CreateInstanceEnumAsync", 20: "ExecQuery",
		21: "ExecQueryAsync", 22: "ExecNotificationQuery", 23: "ExecNotificationQueryAsync",
		24: "ExecMethod", 25: "ExecMethodAsync"}},
	{"027947e1-d731-11ce-a357-000000000001", "IEnumWbemClassObject", roleNone, map[uint16]string{
		3: "Reset", 4: "Next", 5: "NextAsync", 6: "Clone", 7: "Skip"}},
	{"44aca675-e8fc-11d0-a07c-00c04fb68820", "IWbemCallResult", roleNone, map[uint16]string{
		3: "GetResultObject", 4: "GetResultString", 5: "GetResultServices", 6: "GetCallStatus"}},
	{"1c1c45ee-4395-11d2-b60b-00104b703efd", "IWbemFetchSmartEnum", roleNone, map[uint16]string{3: "GetSmartEnum"}},
	{"423ec01e-2e35-11d2-b604-00104b703efd", "IWbemWCOSmartEnum", roleNone, map[uint16]string{3: "Next"}},
	{"d4781cd6-e5d3-44df-ad94-930efe48a887", "IWbemLoginClientID", roleNone, map[uint16]string{3: "SetClientInfo"}},
	{"541679ab-2e5f-11d3-b34e-00104bcc4b4a", "IWbemLoginHelper", roleNone, map[uint16]string{3: "SetEvent"}},
	{"c49e32c7-bc8b-11d2-85d4-00105a1f8304", "IWbemBackupRestore", roleNone, nil},
	{"a359dec5-e813-4834-8a2a-ba7f1d777d76", "IWbemBackupRestoreEx", roleNone, nil},
	{"2c9273e0-1dc3-11d3-b364-00105a1f8177", "IWbemRefreshingServices", roleNone, nil},
	{"f1e9c5b2-f59b-11d2-b362-00105a1f8177", "IWbemRemoteRefresher", roleNone, nil},
	{"dc12a681-737f-11cf-884d-00aa004b2e24", "IWbemClassObject", roleNone, nil},
	{"44aca674-e8fc-11d0-a07c-00c04fb68820", "IWbemContext", roleNone, nil},
	{"7c857801-7381-11cf-884d-00aa004b2e24", "IWbemObjectSink", roleNone, nil},

	// Windows services usually reached over SMB pipes or dynamic TCP ports.
	{"12345778-1234-abcd-ef00-0123456789ab", "lsarpc", roleNone, map[uint16]string{
		0: "LsarClose", 2: "LsarEnumeratePrivileges", 3: "LsarQuerySecurityObject", 6: "LsarOpenPolicy",
		7: "LsarQueryInformationPolicy", 13: "LsarEnumerateTrustedDomains", 14: "LsarLookupNames",
		15: "LsarLookupSids", 44: "LsarOpenPolicy2", 45: "LsarGetUserName", 46: "LsarQueryInformationPolicy2",
		57: "LsarLookupSids2", 58: "LsarLookupNames2", 68: "LsarLookupNames3", 76: "LsarLookupSids3",
		77: "LsarLookupNames4"}},
	{"12345778-1234-abcd-ef00-0123456789ac", "samr", roleNone, map[uint16]string{
		0: "SamrConnect", 1: "SamrCloseHandle", 3: "SamrQuerySecurityObject", 5: "SamrLookupDomainInSamServer",
		6: "SamrEnumerateDomainsInSamServer", 7: "SamrOpenDomain", 8: "SamrQueryInformationDomain",
		11: "SamrEnumerateGroupsInDomain", 12: "SamrCreateUserInDomain", 13: "SamrEnumerateUsersInDomain",
		15: "SamrEnumerateAliasesInDomain", 16: "SamrGetAliasMembership", 17: "SamrLookupNamesInDomain",
		18: "SamrLookupIdsInDomain", 33: "SamrGetMembersInAlias", 34: "SamrOpenUser", 36: "SamrQueryInformationUser",
		37: "SamrSetInformationUser", 39: "SamrGetGroupsForUser", 40: "SamrQueryDisplayInformation",
		48: "SamrQueryDisplayInformation2", 57: "SamrConnect2", 62: "SamrConnect4", 64: "SamrConnect5"}},
	{"367abb81-9844-35f1-ad32-98f038001003", "svcctl", roleNone, map[uint16]string{
		0: "RCloseServiceHandle", 1: "RControlService", 2: "RDeleteService", 6: "RQueryServiceStatus",
		11: "RChangeServiceConfigW", 12: "RCreateServiceW", 14: "REnumServicesStatusW", 15: "ROpenSCManagerW",
		16: "ROpenServiceW", 17: "RQueryServiceConfigW", 19: "RStartServiceW", 23: "RChangeServiceConfigA",
		24: "RCreateServiceA", 26: "REnumServicesStatusA", 27: "ROpenSCManagerA", 28: "ROpenServiceA",
		29: "RQueryServiceConfigA", 31: "RStartServiceA"}},
	{"12345678-1234-abcd-ef00-01234567cffb", "netlogon", roleNone, map[uint16]string{
		2: "NetrLogonSamLogon", 3: "NetrLogonSamLogoff", 4: "NetrServerReqChallenge", 5: "NetrServerAuthenticate",
		6: "NetrServerPasswordSet", 15: "NetrServerAuthenticate2", 19: "NetrEnumerateTrustedDomains",
		26: "NetrServerAuthenticate3", 29: "NetrLogonGetDomainInfo", 30: "NetrServerPasswordSet2",
		34: "DsrGetDcNameEx2", 39: "NetrLogonSamLogonEx", 40: "DsrEnumerateDomainTrusts",
		45: "NetrLogonSamLogonWithFlags"}},
	{"e3514235-4b06-11d1-ab04-00c04fc2dcd2", "drsuapi", roleNone, map[uint16]string{
		0: "IDL_DRSBind", 1: "IDL_DRSUnbind", 2: "IDL_DRSReplicaSync", 3: "IDL_DRSGetNCChanges",
		4: "IDL_DRSUpdateRefs", 12: "IDL_DRSCrackNames", 16: "IDL_DRSDomainControllerInfo", 17: "IDL_DRSAddEntry"}},
	{"338cd001-2244-31f1-aaaa-900038001003", "winreg", roleNone, map[uint16]string{
		0: "OpenClassesRoot", 1: "OpenCurrentUser", 2: "OpenLocalMachine", 3: "OpenPerformanceData",
		4: "OpenUsers", 5: "BaseRegCloseKey", 6: "BaseRegCreateKey", 7: "BaseRegDeleteKey",
		8: "BaseRegDeleteValue", 9: "BaseRegEnumKey", 10: "BaseRegEnumValue", 11: "BaseRegFlushKey",
		12: "BaseRegGetKeySecurity", 15: "BaseRegOpenKey", 16: "BaseRegQueryInfoKey", 17: "BaseRegQueryValue",
		20: "BaseRegSaveKey", 22: "BaseRegSetValue", 24: "BaseInitiateSystemShutdown", 26: "BaseRegGetVersion",
		30: "BaseInitiateSystemShutdownEx"}},
	{"12345678-1234-abcd-ef00-0123456789ab", "spoolss", roleNone, map[uint16]string{
		0: "RpcEnumPrinters", 1: "RpcOpenPrinter", 6: "RpcDeletePrinter", 29: "RpcClosePrinter",
		65: "RpcRemoteFindFirstPrinterChangeNotificationEx", 69: "RpcOpenPrinterEx", 89: "RpcAddPrinterDriverEx"}},
	{"76f03f96-cdfd-44fc-a22c-64950a001209", "IRemoteWinspool", roleNone, map[uint16]string{
		0: "RpcAsyncOpenPrinter", 1: "RpcAsyncAddPrinter", 2: "RpcAsyncSetJob", 3: "RpcAsyncGetJob",
		4: "RpcAsyncEnumJobs", 5: "RpcAsyncAddJob", 6: "RpcAsyncScheduleJob", 7: "RpcAsyncDeletePrinter",
		8: "RpcAsyncSetPrinter", 9: "RpcAsyncGetPrinter", 10: "RpcAsyncStartDocPrinter",
		11: "RpcAsyncStartPagePrinter", 12: "RpcAsyncWritePrinter", 13: "RpcAsyncEndPagePrinter",
		14: "RpcAsyncEndDocPrinter", 15: "RpcAsyncAbortPrinter", 16: "RpcAsyncGetPrinterData",
		17: "RpcAsyncGetPrinterDataEx", 18: "RpcAsyncSetPrinterData", 19: "RpcAsyncSetPrinterDataEx",
		20: "RpcAsyncClosePrinter"}},
	{"4b324fc8-1670-01d3-1278-5a47bf6ee188", "srvsvc", roleNone, map[uint16]string{
		8: "NetrConnectionEnum", 9: "NetrFileEnum", 12: "NetrSessionEnum", 14: "NetrShareAdd",
		15: "NetrShareEnum", 16: "NetrShareGetInfo", 21: "NetrServerGetInfo", 28: "NetrRemoteTOD",
		31: "NetprPathCanonicalize", 34: "NetprNameCanonicalize"}},
	{"6bffd098-a112-3610-9833-46c3f87e345a", "wkssvc", roleNone, map[uint16]string{
		0: "NetrWkstaGetInfo", 1: "NetrWkstaSetInfo", 2: "NetrWkstaUserEnum", 5: "NetrWkstaTransportEnum"}},
	{"1ff70682-0a51-30e8-076d-740be8cee98b", "atsvc", roleNone, map[uint16]string{
		0: "NetrJobAdd", 1: "NetrJobDel", 2: "NetrJobEnum", 3: "NetrJobGetInfo"}},
	{"86d35949-83c9-4044-b424-db363231fd0c", "ITaskSchedulerService", roleNone, map[uint16]string{
		0: "SchRpcHighestVersion", 1: "SchRpcRegisterTask", 2: "SchRpcRetrieveTask", 3: "SchRpcCreateFolder",
		4: "SchRpcSetSecurity", 7: "SchRpcEnumTasks", 9: "SchRpcGetInstanceInfo", 12: "SchRpcRun",
		13: "SchRpcDelete"}},
	{"82273fdc-e32a-18c3-3f78-827929dc23ea", "eventlog", roleNone, map[uint16]string{
		0: "ElfrClearELFW", 1: "ElfrBackupELFW", 2: "ElfrCloseEL", 4: "ElfrNumberOfRecords", 7: "ElfrOpenELW",
		9: "ElfrRegisterEventSourceW", 10: "ElfrOpenBELW", 11: "ElfrReadELW", 12: "ElfrReportEventW"}},
	{"f6beaff7-1e19-4fbb-9f8f-b89e2018337c", "IEventService", roleNone, nil},
	{"8d9f4e40-a03d-11ce-8f69-08003e30051b", "ntsvcs", roleNone, nil},
	{"3919286a-b10c-11d0-9ba8-00c04fd92ef5", "dssetup", roleNone, map[uint16]string{
		0: "DsRolerGetPrimaryDomainInformation", 1: "DsRolerDnsNameToFlatName", 2: "DsRolerDcAsDc",
		3: "DsRolerDcAsReplica", 4: "DsRolerDemoteDc", 5: "DsRolerGetDcOperationProgress",
		6: "DsRolerGetDcOperationResults", 7: "DsRolerCancel", 8: "DsRolerServerSaveStateForUpgrade",
		9: "DsRolerUpgradeDownlevelServer", 10: "DsRolerAbortDownlevelServerUpgrade", 11: "DsRolerGetDatabaseFacts"}},
	{"4fc742e0-4a10-11cf-8273-00aa004ae673", "netdfs", roleNone, nil},
	{"df1941c5-fe89-4e79-bf10-463657acf44d", "efsrpc", roleNone, nil},
	{"c681d488-d850-11d0-8c52-00c04fd90f7e", "efsrpc2", roleNone, nil},
	{"a8e0653c-2744-4389-a61d-7373df8b2292", "FileServerVssAgent", roleNone, nil},
	{"3dde7c30-165d-11d1-ab8f-00805f14db40", "BackupKey", roleNone, nil},
	{"6bffd098-a112-3610-9833-012892020162", "browser", roleNone, nil},
	{"894de0c0-0d55-11d3-a322-00c04fa321a1", "InitShutdown", roleNone, nil},
	{"d95afe70-a6d5-4259-822e-2c84da1ddb0d", "WindowsShutdown", roleNone, nil},
	{"378e52b0-c0a9-11cf-822d-00aa0051e40f", "sasec", roleNone, nil},
	{"91ae6020-9e3c-11cf-8d7c-00aa00c091be", "ICertPassage", roleNone, nil},
	{"d99e6e70-fc88-11d0-b498-00a0c90312f3", "ICertRequestD", roleNone, nil},
	{"5ca4a760-ebb1-11cf-8611-00a0245420ed", "winstation_rpc", roleNone, nil},
	{"6b5bdd1e-528c-422c-af8c-a4079be4fe48", "RemoteFW", roleNone, nil},
	{"50abc2a4-574d-40b3-9d66-ee4fd5fba076", "dnsserver", roleNone, nil},

	// Remote Desktop Gateway ([MS-TSGU] §1.9, §3.1.4; protocols.md §8).
	{"44e265dd-7daf-42cd-8560-3cdb6e7a2729", "TsProxyRpcInterface", roleNone, map[uint16]string{
		1: "TsProxyCreateTunnel", 2: "TsProxyAuthorizeTunnel", 3: "TsProxyMakeTunnelCall",
		4: "TsProxyCreateChannel", 6: "TsProxyCloseChannel", 7: "TsProxyCloseTunnel",
		8: "TsProxySetupReceivePipe", 9: "TsProxySendToServer"}},

	// Exchange ([MS-NSPI] §3.1.4, [MS-OXCRPC] §3.1.4).
	{"f5cc5a18-4264-101a-8c59-08002b2f8426", "nspi", roleNone, map[uint16]string{
		0: "NspiBind", 1: "NspiUnbind", 2: "NspiUpdateStat", 3: "NspiQueryRows", 4: "NspiSeekEntries",
		5: "NspiGetMatches", 6: "NspiResortRestriction", 7: "NspiDNToMId", 8: "NspiGetPropList",
		9: "NspiGetProps", 10: "NspiCompareMIds", 11: "NspiModProps", 12: "NspiGetSpecialTable",
		13: "NspiGetTemplateInfo", 14: "NspiModLinkAtt", 16: "NspiQueryColumns", 19: "NspiResolveNames",
		20: "NspiResolveNamesW"}},
	{"a4f1db00-ca47-1067-b31f-00dd010662da", "exchange_mapi", roleNone, map[uint16]string{
		0: "EcDoConnect", 1: "EcDoDisconnect", 2: "EcDoRpc", 3: "EcGetMoreRpc", 4: "EcRRegisterPushNotification",
		5: "EcRUnregisterPushNotification", 6: "EcDummyRpc", 7: "EcRGetDCName", 8: "EcRNetGetDCName",
		9: "EcDoRpcExt", 10: "EcDoConnectEx", 11: "EcDoRpcExt2"}},
	{"1544f5e0-613c-11d1-93df-00c04fd7bd09", "exchange_rfr", roleNone, nil},

	// Messenger service (connectionless, UDP) [MS-MSRP].
	{"5a7b91f8-ff00-11d0-a9b2-00c04fb6e6fc", "msgsvcsend", roleNone, map[uint16]string{0: "NetrSendMessage"}},
	{"17fdd703-1827-4e34-79d4-24a55c53bb37", "msgsvc", roleNone, nil},

	// PROFINET IO context management (connectionless, IEC 61158-6-10).
	{"dea00001-6c97-11d1-8271-00a02442df7d", "PNIO-CM Device", roleNone, pnioOps},
	{"dea00002-6c97-11d1-8271-00a02442df7d", "PNIO-CM Controller", roleNone, pnioOps},
	{"dea00003-6c97-11d1-8271-00a02442df7d", "PNIO-CM Supervisor", roleNone, pnioOps},
	{"dea00004-6c97-11d1-8271-00a02442df7d", "PNIO-CM ParameterServer", roleNone, pnioOps},
}

var pnioOps = map[uint16]string{0: "Connect", 1: "Release", 2: "Read", 3: "Write", 4: "Control", 5: "ReadImplicit"}

// rpcClass is a DCOM class (CLSID) the detector names when it appears in an
// activation.
type rpcClass struct {
	uuid rpcUUID
	name string
	ra   bool // a Remote Assistance server class (§1.9)
}

var rpcClassDefs = []struct {
	uuid, name string
	ra         bool
}{
	{"3c3a70a7-a468-49b9-8ada-28e11fccad5d", "RASrv", true},
	{"833e4010-aff7-4ac3-aac2-9f24c1457bce", "PCHService", true},
	{"8bc3f05e-d86b-11d0-a075-00c04fb68820", "WbemLevel1Login", false},
	{"49b2791a-b1ae-4c90-9b8e-e860ba07f889", "MMC20.Application", false},
	{"9ba05972-f6a8-11cf-a442-00a0c90a8f39", "ShellWindows", false},
	{"c08afd90-f2a1-11d1-8455-00a0c91f3880", "ShellBrowserWindow", false},
	{"00024500-0000-0000-c000-000000000046", "Excel.Application", false},
}

// UUIDs the parsers compare against directly.
var (
	uuidNDR64              = mustRPCUUID("71710533-beba-4937-8319-b5dbef9ccc36")
	uuidIActPropsIn        = mustRPCUUID("000001a2-0000-0000-c000-000000000046") // IID_IActivationPropertiesIn
	uuidCLSIDActPropsIn    = mustRPCUUID("00000338-0000-0000-c000-000000000046") // CLSID_ActivationPropertiesIn
	uuidInstantiationInfo  = mustRPCUUID("000001ab-0000-0000-c000-000000000046") // CLSID_InstantiationInfo
	uuidISystemActivatorID = mustRPCUUID("000001a0-0000-0000-c000-000000000046")
)

// btfnPrefix is the first 8 wire bytes of every bind-time feature
// negotiation transfer syntax; the last 8 are a bit mask [MS-RPCE §2.2.2.14].
var btfnPrefix = [8]byte{0x2c, 0x1c, 0xb7, 0x6c, 0x12, 0x98, 0x40, 0x45}

var (
	rpcInterfaces map[rpcUUID]*rpcInterface
	rpcClasses    map[rpcUUID]*rpcClass
	rpcRAClasses  []*rpcClass
)

func init() {
	rpcInterfaces = make(map[rpcUUID]*rpcInterface, len(rpcInterfaceDefs))
	for _, d := range rpcInterfaceDefs {
		u := mustRPCUUID(d.uuid)
		if _, dup := rpcInterfaces[u]; dup {
			panic("dcerpc: interface listed twice: " + d.uuid)
		}
		rpcInterfaces[u] = &rpcInterface{uuid: u, name: d.name, role: d.role, ops: d.ops}
	}
	rpcClasses = make(map[rpcUUID]*rpcClass, len(rpcClassDefs))
	for _, d := range rpcClassDefs {
		c := &rpcClass{uuid: mustRPCUUID(d.uuid), name: d.name, ra: d.ra}
		rpcClasses[c.uuid] = c
		if c.ra {
			rpcRAClasses = append(rpcRAClasses, c)
		}
	}
}

// lookupInterface returns the known interface with the given wire UUID, or nil.
func lookupInterface(u rpcUUID) *rpcInterface { return rpcInterfaces[u] }

// opName returns the name of opnum op of interface i, or "".
func (i *rpcInterface) opName(op uint16) string {
	if i == nil {
		return ""
	}
	return i.ops[op]
}

// LookupDCERPCInterface names an interface given its canonical UUID string
// ("e1af8308-5d1f-11c9-91a4-08002b14a0fa" → "epmapper"), from the one
// interface table the detector uses. It is meant for policy compilation and
// session assembly, not the packet path.
func LookupDCERPCInterface(uuid string) (name string, ok bool) {
	u, ok := parseRPCUUID(uuid)
	if !ok {
		return "", false
	}
	if i := rpcInterfaces[u]; i != nil {
		return i.name, true
	}
	if c := rpcClasses[u]; c != nil {
		return c.name, true
	}
	return "", false
}

// parseRPCUUID converts a canonical UUID string into its little-endian wire form.
func parseRPCUUID(s string) (rpcUUID, bool) {
	var u rpcUUID
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return u, false
	}
	var be [16]byte
	hexs := s[0:8] + s[9:13] + s[14:18] + s[19:23] + s[24:36]
	if _, err := hex.Decode(be[:], []byte(hexs)); err != nil {
		return u, false
	}
	binary.LittleEndian.PutUint32(u[0:], binary.BigEndian.Uint32(be[0:]))
	binary.LittleEndian.PutUint16(u[4:], binary.BigEndian.Uint16(be[4:]))
	binary.LittleEndian.PutUint16(u[6:], binary.BigEndian.Uint16(be[6:]))
	copy(u[8:], be[8:])
	return u, true
}

func mustRPCUUID(s string) rpcUUID {
	u, ok := parseRPCUUID(s)
	if !ok {
		panic("dcerpc: bad UUID in table: " + s)
	}
	return u
}

// String returns the canonical lower-case form.
func (u rpcUUID) String() string {
	const hexdig = "0123456789abcdef"
	var b [36]byte
	var be [16]byte
	binary.BigEndian.PutUint32(be[0:], binary.LittleEndian.Uint32(u[0:]))
	binary.BigEndian.PutUint16(be[4:], binary.LittleEndian.Uint16(u[4:]))
	binary.BigEndian.PutUint16(be[6:], binary.LittleEndian.Uint16(u[6:]))
	copy(be[8:], u[8:])
	j := 0
	for i, c := range be {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b[j] = '-'
			j++
		}
		b[j], b[j+1] = hexdig[c>>4], hexdig[c&15]
		j += 2
	}
	return string(b[:])
}

// rpcUUIDAt reads a wire UUID at b[0:16] whose integer fields follow the
// sender's byte order (drep), normalised to the little-endian form.
func rpcUUIDAt(b []byte, le bool) rpcUUID {
	var u rpcUUID
	copy(u[:], b[:16])
	if !le {
		u[0], u[1], u[2], u[3] = u[3], u[2], u[1], u[0]
		u[4], u[5] = u[5], u[4]
		u[6], u[7] = u[7], u[6]
	}
	return u
}
